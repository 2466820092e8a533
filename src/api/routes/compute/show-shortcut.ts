// GET /v2.1/servers/{id} answered before fastify (shortcut.ts says why and what it leaves to
// fastify): the same body (servers.ts's `show`, views memoized), the same headers in the same
// order as the route's hooks give them (listener.ts, index.ts's computeHeaders).
import type { IncomingMessage } from 'node:http'
import { formatVersion, parseMicroversion, requestedVersion } from '../../microversion.ts'
import type { Shortcut } from '../../shortcut.ts'
import { computeHeaders } from './headers.ts'
import { JSON_TYPE, type ViewCaller } from './servers.ts'

/** The path exactly: no query, no trailing or doubled slash, no project prefix, a UUID. */
const SHOW = /^\/v2\.1\/servers\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

export function showShortcut(show: (caller: ViewCaller, id: string) => Promise<Buffer>): Shortcut {
  return {
    takes: (req: IncomingMessage) =>
      req.method === 'GET' &&
      SHOW.test(req.url ?? '') &&
      // A body (Tempest sends an empty one), an upload, a 100-continue: the route's hooks decide.
      (req.headers['content-length'] === undefined || req.headers['content-length'] === '0') &&
      req.headers['transfer-encoding'] === undefined &&
      req.headers.expect === undefined,

    async answer(req, res, auth, requestId) {
      const id = SHOW.exec(req.url!)![1]!
      // A version outside the range, or malformed, is answered by the route (400/406).
      const microversion = parseMicroversion(requestedVersion(req.headers))
      const body = await show({ auth, microversion }, id)
      res.writeHead(200, {
        'content-type': JSON_TYPE,
        'x-openstack-request-id': requestId,
        ...computeHeaders(requestId, formatVersion(microversion)),
        'content-length': body.length,
      })
      res.end(body)
      return true
    },
  }
}
