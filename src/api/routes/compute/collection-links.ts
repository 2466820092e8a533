// Nova's collection `next` links (common.ViewBuilder._get_collection_links): present when the
// page is full (the limit asked for, or max_limit), pointing past its last item with the
// request's own parameters, sorted, and `marker` replaced.
import type { FastifyRequest } from 'fastify'

/** Python's urllib.parse.quote_plus. */
const quotePlus = (s: string) =>
  encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+')

export function collectionLinks(
  req: FastifyRequest,
  base: string,
  collection: string,
  count: number,
  lastId: string | undefined,
  maxLimit: number,
): { rel: 'next'; href: string }[] {
  const query = req.query as Record<string, string | string[] | undefined>
  const rawLimit = query.limit === undefined ? undefined : [query.limit].flat().pop()
  const maxItems = Math.min(rawLimit === undefined ? maxLimit : Number(rawLimit), maxLimit)
  if (!maxItems || maxItems !== count || lastId === undefined) return []
  // OrderedDict(sorted(request.params.items())): one value per name, the last one.
  const params = new Map<string, string>()
  for (const [k, v] of Object.entries(query).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (v !== undefined) params.set(k, [v].flat().pop()!)
  }
  params.set('marker', lastId)
  const qs = [...params].map(([k, v]) => `${quotePlus(k)}=${quotePlus(v)}`).join('&')
  return [{ rel: 'next', href: `${base}/v2.1/${collection}?${qs}` }]
}
