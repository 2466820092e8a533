// Derives nova-servers-mv.json (golden samples of the servers API at the microversions where its
// shape changed) from real Nova's answers in the shared anchors (anchors/nova/microversions).
// Run by hand when the anchors change, and commit its output:
//   node --import tsx test/api/golden/generate-nova-servers-mv.ts [microversions-dir]
// The test (test/api/nova-servers-microversions.test.ts) reads only the JSON.
//
// The reference server (INDEX.md): created by admin at 2.52 with the tag t1, description "probe"
// and networks "none", then locked at 2.73 with the reason "probe". Ids, times and the host
// become placeholders; the headers kept are the version ones and the content type (the anchors
// recorded one Vary field of two: Vary is compared by the transcripts' test).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const dir = path.resolve(process.argv[2] ?? path.join(here, '../../../../shared/anchors/nova/microversions'))
const out = path.join(here, 'nova-servers-mv.json')

const PLACEHOLDERS = {
  compute_url: { means: "the compute endpoint's scheme, host and port", pattern: 'https?://[^/]+' },
  server_id: { means: 'id of the reference server' },
  project_id: { means: 'project id of admin, its owner' },
  user_id: { means: 'user id of admin' },
  image_id: { means: 'the image it was built from' },
  host: { means: 'its compute host' },
  host_id: { means: 'hostId: sha224 of project id and host, hex', pattern: '[0-9a-f]{56}' },
  instance_name: { means: 'OS-EXT-SRV-ATTR:instance_name', pattern: 'instance-[0-9a-f]{8}' },
  iso_seconds: { means: 'created/updated', pattern: '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z' },
  iso_micros: { means: 'launched_at (no zone)', pattern: '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}' },
  reservation_id: { means: 'OS-EXT-SRV-ATTR:reservation_id', pattern: 'r-[0-9a-z]{8}' },
} as const

const LITERALS: [string, string][] = [
  ['0fa48714-8ff0-4302-88d8-58a8787d53eb', '{server_id}'],
  ['c2cae98a03974f72a25c9dbc9f734467', '{project_id}'],
  ['3265a83dc948425b8b4169ff0b7144d3', '{user_id}'],
  ['dff1ad2a-fd56-412b-85be-b5168fe281ec', '{image_id}'],
  ['eb89282bffd70509a97df3b494f216e8719383c5a776ef5c449adbb5', '{host_id}'],
  ['osref-compute', '{host}'],
]

function placehold(v: unknown, key?: string): unknown {
  if (typeof v === 'string') {
    if (key === 'OS-EXT-SRV-ATTR:reservation_id') return '{reservation_id}'
    if (key === 'OS-EXT-SRV-ATTR:instance_name') return '{instance_name}'
    let s = v
    for (const [literal, token] of LITERALS) s = s.split(literal).join(token)
    s = s.replace(/^http:\/\/127\.0\.0\.1:8774/, '{compute_url}')
    s = s.replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}/g, '{iso_micros}')
    return s.replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/g, '{iso_seconds}')
  }
  if (Array.isArray(v)) return v.map((x) => placehold(x))
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, placehold(x, k)]))
  return v
}

const KEEP = ['content-type', 'openstack-api-version', 'x-openstack-nova-api-version']
const FAMILY = /^(server-show|servers-detail|servers-list|server-tags|mv-2\.94-refused)/

const samples = []
for (const file of readdirSync(dir).sort()) {
  if (!file.endsWith('.txt') || !FAMILY.test(file)) continue
  const text = readFileSync(path.join(dir, file), 'utf8')
  const [head, ...rest] = text.split(/\n\n/)
  const lines = head!.split('\n')
  const [method, rawPath] = lines[0]!.split(' ') as [string, string]
  const version = /^microversion: (.*)$/m.exec(head!)![1]!
  const response = rest.join('\n\n')
  const blank = response.indexOf('\n\n')
  const respHead = response.slice(0, blank).split('\n')
  const status = Number(respHead[0]!.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const l of respHead.slice(1)) {
    const i = l.indexOf(':')
    const name = l.slice(0, i).trim().toLowerCase()
    if (KEEP.includes(name)) headers[name] = l.slice(i + 1).trim()
  }
  samples.push({
    name: file.replace(/\.txt$/, ''),
    anchor: file,
    microversion: version,
    request: { method, path: `/v2.1${placehold(rawPath) as string}` },
    response: { status, headers, absentHeaders: [], body: placehold(JSON.parse(response.slice(blank + 2))) },
  })
}

const golden = {
  about:
    'Golden samples of the servers API per microversion family, derived by generate-nova-servers-mv.ts from real Nova 26 ' +
    '(Zed, max 2.93, fake driver, no Neutron) in the shared anchors. The reference server: created by admin at 2.52 ' +
    '(tag t1, description "probe", networks "none"), locked at 2.73 with the reason "probe". Strings may hold {placeholders}.',
  source: 'shared/anchors/nova/microversions',
  placeholders: PLACEHOLDERS,
  samples,
}
writeFileSync(out, JSON.stringify(golden, null, 2) + '\n')
console.log(`${samples.length} samples → ${path.relative(process.cwd(), out)}`)
