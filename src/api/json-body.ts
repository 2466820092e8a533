// JSON request bodies: fastify's parser (prototype poisoning refused) behind a check of the raw
// text. JSON.parse copes with any depth, but what comes after it walks the value recursively
// (Ajv, the Python repr in validation messages, JSON.stringify), and 5,000 nested arrays — a
// 10 KB body — overflowed the stack: a 500, even before login. So the depth is decided first, on
// the text, by a loop that keeps no stack of its own. The same loop finds NUL characters
// (`\u0000`): PostgreSQL text cannot hold them, and a name with one was a 500 there (SQLite took
// it: the two dialects must answer alike).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BadRequest } from '../errors.ts'
import type { ServiceFlavor } from './errors.ts'

/**
 * Deepest nesting of arrays and objects a body may have. The deepest body these APIs take is a
 * Keystone auth request scoped to a project in a domain, 6 levels
 * (`{"auth": {"scope": {"project": {"domain": {"name": ...}}}}}`); block_device_mapping_v2 and
 * image properties stay under 5. Ten times that is still far from any stack limit.
 */
export const MAX_JSON_DEPTH = 64

/**
 * What is wrong with JSON `text` before it is parsed: nested more than `limit` deep, or a string
 * holding a NUL (`\u0000`; a raw NUL is no JSON at all). Strings are skipped, escapes and all.
 */
export function jsonTextProblem(text: string, limit: number): 'tooDeep' | 'nul' | undefined {
  let depth = 0
  let nul = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      // Skip the string: to its closing quote, jumping over every escaped character.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i)
        if (d === 0x5c /* \ */) {
          if (text.startsWith('u0000', i + 1)) nul = true
          i++
        } else if (d === 0x22) break
      }
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > limit) return 'tooDeep'
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      // Text that closes more than it opened is not JSON: JSON.parse refuses it at that character.
      depth--
    }
  }
  return nul ? 'nul' : undefined
}

/** True when `text` nests arrays and objects more than `limit` deep (string contents skipped). */
export const nestedDeeperThan = (text: string, limit: number) => jsonTextProblem(text, limit) === 'tooDeep'

/** The message of the 400, in the words each service uses for a body it cannot read. */
export function malformedMessage(flavor: ServiceFlavor, problem: 'tooDeep' | 'nul'): string {
  const why = problem === 'tooDeep' ? `nested more than ${MAX_JSON_DEPTH} levels deep` : 'NUL characters (\\u0000) are not allowed'
  return flavor === 'compute'
    ? `Malformed request body: ${problem === 'tooDeep' ? 'JSON ' : ''}${why}.`
    : `Malformed JSON in request body: ${why}.`
}

type Done = (err: Error | null, body?: unknown) => void

/** A `parseAs: 'string'` content-type parser: 400 (in the listener's fault shape) for a problem of the text, else fastify's. */
export function jsonBodyParser(app: FastifyInstance, flavor: ServiceFlavor) {
  const parse = app.getDefaultJsonParser('error', 'error')
  return (req: FastifyRequest, body: string | Buffer, done: Done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    // Nova takes an empty PUT or POST as no body (wsgi's _get_request_content): `PUT
    // /servers/{id}/tags/{tag}` with a JSON content type and nothing else is a normal request.
    if (flavor === 'compute' && text === '') return done(null, null)
    const problem = jsonTextProblem(text, MAX_JSON_DEPTH)
    if (problem) return done(new BadRequest(malformedMessage(flavor, problem)), undefined)
    void parse(req, text, done)
  }
}
