// Hooks that only a few routes need, added to those routes alone. A hook added to the whole
// listener runs (and costs) on every request, a GET of a server included, only to find that its
// route did not ask for it.
import type { FastifyContextConfig, FastifyInstance, RouteOptions } from 'fastify'

type Lifecycle = 'preValidation' | 'preHandler' | 'onSend' | 'onResponse'
type Hook = (...args: never[]) => unknown

/**
 * Add `hooks` to every route registered from now on whose config sets `flag`; they run after the
 * listener's own hooks of the same phase, in the order given.
 */
export function addRouteHooks(app: FastifyInstance, flag: keyof FastifyContextConfig, hooks: Partial<Record<Lifecycle, Hook>>): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!(route.config as FastifyContextConfig | undefined)?.[flag]) return
    const r = route as unknown as Record<Lifecycle, Hook | Hook[] | undefined>
    for (const [phase, hook] of Object.entries(hooks) as [Lifecycle, Hook][]) {
      const existing = r[phase]
      r[phase] = existing === undefined ? [hook] : [...(Array.isArray(existing) ? existing : [existing]), hook]
    }
  })
}
