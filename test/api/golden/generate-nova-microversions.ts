// Derives nova-microversions.json (golden samples) from real Nova 26's answers at the
// microversions where each resource beside servers changed (shared anchors:
// nova/microversions/, INDEX.md). Run by hand when the anchors change, and commit its output:
//   node --import tsx test/api/golden/generate-nova-microversions.ts [anchors-dir]
// The test (test/api/nova-microversions.test.ts) reads only the JSON.
//
// Each sample keeps the request (ids in the path become {server_id}, {request_id}, {group_id}),
// the status, the version headers and the body with ids, times, hosts, fingerprints and keys as
// placeholders ("{uuid}", "{time}", ...); host names ({host}), also as the keys of an availability
// zone's `hosts`. The servers' own samples are left to the servers work.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const dir = path.resolve(process.argv[2] ?? path.join(here, '../../../../shared/anchors/nova/microversions'))
const out = path.join(here, 'nova-microversions.json')

const FAMILIES =
  /^(flavor|flavors|keypair|keypairs|limits|instance-action|instance-actions|os-services|server-group|server-groups|os-security-groups|version|mv-2\.94|os-quota-sets|os-hypervisors|os-availability-zone|os-aggregates|os-simple-tenant-usage)/

const PLACEHOLDERS: [RegExp, string][] = [
  [/^req-[0-9a-f-]{36}$/, '{request_id}'],
  [/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, '{uuid}'],
  [/^[0-9a-f]{32}$/, '{hex32}'],
  [/^[0-9a-f]{56}$/, '{host_id}'],
  [/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$/, '{time}'],
  [/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/, '{fingerprint}'],
  [/^ssh-rsa /, '{public_key}'],
]
const HOST_KEYS = new Set(['host', 'hypervisor_hostname'])
/** Values kept as they are: they are the same on any cloud (version documents, names of things, links aside). */
function normalize(v: unknown, key?: string): unknown {
  if (Array.isArray(v)) return v.map((x) => normalize(x))
  // os-availability-zone/detail: `hosts` is keyed by host name.
  if (v && typeof v === 'object' && key === 'hosts') return Object.fromEntries(Object.entries(v).map(([, x]) => ['{host}', normalize(x)]))
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x, k)]))
  if (typeof v === 'string') {
    if (key === 'href') return v.replace(/^https?:\/\/[^/]+/, '{base}').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '{uuid}')
    if (key !== undefined && HOST_KEYS.has(key)) return '{host}'
    for (const [re, ph] of PLACEHOLDERS) if (re.test(v)) return ph
  }
  return v
}

interface Sample {
  name: string
  method: string
  path: string
  microversion: string | null
  status: number
  headers: Record<string, string>
  body: unknown
}

const samples: Sample[] = []
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.txt') && FAMILIES.test(f))
  .sort()) {
  const text = readFileSync(path.join(dir, file), 'utf8')
  const [head = '', ...rest] = text.split('\n\n')
  const lines = head.split('\n')
  const [method = 'GET', rawPath = ''] = lines[0]!.split(' ')
  const mv = /^microversion: (.*)$/m.exec(head)?.[1]
  const statusBlock = rest[0] ?? ''
  const status = Number(/^HTTP (\d+)/.exec(statusBlock)?.[1])
  const headers: Record<string, string> = {}
  for (const l of statusBlock.split('\n').slice(1)) {
    const i = l.indexOf(':')
    const name = l.slice(0, i).toLowerCase()
    if (['openstack-api-version', 'x-openstack-nova-api-version', 'content-type'].includes(name)) headers[name] = l.slice(i + 1).trim()
  }
  const bodyText = rest.slice(1).join('\n\n').trim()
  const p = (rawPath || '/v2.1')
    .replace(/^\/servers\/[0-9a-f-]{36}/, '/servers/{server_id}')
    .replace(/\/os-instance-actions\/req-[0-9a-f-]{36}/, '/os-instance-actions/{request_id}')
    .replace(/^\/os-server-groups\/[0-9a-f-]{36}/, '/os-server-groups/{group_id}')
    .replace(/^\/os-quota-sets\/[0-9a-f]{32}/, '/os-quota-sets/{project_id}')
  samples.push({
    name: file.replace(/\.txt$/, ''),
    method,
    // The anchors give paths below /v2.1 (the root document: "/"; /v2.1 itself: an empty path).
    path: p === '/' ? '/' : p === '/v2.1' ? '/v2.1' : `/v2.1${p}`,
    microversion: mv === '(none)' || mv === undefined ? null : mv,
    status,
    headers,
    body: bodyText ? normalize(JSON.parse(bodyText)) : null,
  })
}

writeFileSync(out, `${JSON.stringify({ source: 'shared/anchors/nova/microversions (real Nova 26, Zed, max 2.93)', samples }, null, 2)}\n`)
console.log(`${samples.length} samples -> ${path.relative(process.cwd(), out)}`)
