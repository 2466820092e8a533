// Route schemas compiled when a route is first used, not when its listener starts: compiling all
// of them (Ajv generates and evaluates a function per schema) was half of the CPU that
// `skiff serve` spent before it answered its first request. A second after it listens, the rest
// are compiled in the background, one per turn of the event loop, so later requests need not wait.
// Same Ajv, same options (ajv.ts): only the moment changes.
import { compileSchema } from './ajv.ts'

type Validate = ReturnType<typeof compileSchema>

/** A validator compiler for fastify's setValidatorCompiler; `warm()` compiles what is left. */
export function lazyValidators() {
  const pending = new Set<() => Validate>()
  const validatorCompiler = (route: { schema: object }) => {
    let compiled: Validate | undefined
    const get = () => {
      if (!compiled) {
        pending.delete(get)
        compiled = compileSchema(route)
      }
      return compiled
    }
    pending.add(get)
    const validate = ((data: unknown) => {
      const fn = get()
      const ok = fn(data)
      validate.errors = fn.errors
      return ok
    }) as Validate
    // Fastify hands an Ajv function (one with schemaEnv) the parent of the value it checks.
    return Object.assign(validate, { schemaEnv: {} })
  }
  return {
    validatorCompiler,
    /** In a second (once the start is over), compile the schemas no request has needed yet, one per macrotask. */
    warm() {
      const next = () => {
        const get = pending.values().next().value
        if (!get) return
        try {
          get()
        } catch {
          /* the request that needs it answers 500 with the error */
        }
        setImmediate(next).unref()
      }
      setTimeout(next, 1000).unref()
    },
  }
}
