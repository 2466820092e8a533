// The headers Nova puts on every answer (the onSend hook of index.ts, and show-shortcut.ts).

/** The headers of every compute answer: its request id and, unless the version was malformed, the version echoed. */
export function computeHeaders(requestId: string, versionEcho: string | undefined): Record<string, string> {
  if (versionEcho === undefined) return { 'x-compute-request-id': requestId }
  return {
    'x-compute-request-id': requestId,
    'openstack-api-version': `compute ${versionEcho}`,
    'x-openstack-nova-api-version': versionEcho,
    vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version',
  }
}
