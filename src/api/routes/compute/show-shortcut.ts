// GET /v2.1/servers/{id} answered before fastify (shortcut.ts says why and what it leaves to
// fastify): the same body (servers.ts's `show`, views memoized), the same headers in the same
// order as the route's hooks give them (listener.ts, index.ts's computeHeaders).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { formatVersion, parseMicroversion, requestedVersion, type Microversion } from '../../microversion.ts'
import type { Shortcut } from '../../shortcut.ts'
import { computeHeaders } from './headers.ts'
import { JSON_TYPE, type ShowAnswers } from './servers.ts'

/** The path exactly: no query, no trailing or doubled slash, no project prefix, a UUID. */
const SHOW = /^\/v2\.1\/servers\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/
/** `/v2.1/servers/` and a UUID. */
const SHOW_LENGTH = 50

export function showShortcut({ show, showKept }: ShowAnswers): Shortcut {
  /** The answer's headers by microversion, as node takes them (a flat list), and where the request id goes. */
  const headersByVersion = new Map<string, { list: string[]; ids: number[] }>()
  const write = (res: ServerResponse, v: Microversion, requestId: string, body: Buffer) => {
    const echo = formatVersion(v)
    let headers = headersByVersion.get(echo)
    if (!headers) {
      const entries = Object.entries({ 'content-type': JSON_TYPE, 'x-openstack-request-id': '', ...computeHeaders('', echo) })
      const list = entries.flat()
      headers = { list, ids: entries.flatMap(([, x], i) => (x === '' ? [2 * i + 1] : [])) }
      headersByVersion.set(echo, headers)
    }
    const list = headers.list.slice()
    for (const i of headers.ids) list[i] = requestId
    list.push('content-length', String(body.length))
    res.writeHead(200, list)
    res.end(body)
  }

  return {
    takes: (req: IncomingMessage) =>
      req.method === 'GET' &&
      req.url?.length === SHOW_LENGTH &&
      SHOW.test(req.url) &&
      // A body (Tempest sends an empty one), an upload, a 100-continue: the route's hooks decide.
      (req.headers['content-length'] === undefined || req.headers['content-length'] === '0') &&
      req.headers['transfer-encoding'] === undefined &&
      req.headers.expect === undefined,

    answer(req, res, auth, requestId) {
      const id = req.url!.slice(SHOW_LENGTH - 36)
      // A version outside the range, or malformed, is answered by the route (400/406): the throw says so.
      const microversion = parseMicroversion(requestedVersion(req.headers))
      const caller = { auth, microversion }
      const kept = showKept(caller, id)
      if (kept) {
        write(res, microversion, requestId, kept)
        return true
      }
      return show(caller, id).then((body) => {
        write(res, microversion, requestId, body)
        return true
      })
    },
  }
}
