// Derives nova-rescue.json (golden samples) from the raw transcripts of real Nova 26 in the shared
// anchors. Run by hand when the anchors change, and commit its output:
//   node --import tsx test/api/golden/generate-nova-rescue.ts [transcripts-dir]
// The test (test/api/nova-transcripts.test.ts) reads only the JSON; nothing reads the anchors at test time.
//
// What it does to each exchange: ids, times, request ids and generated passwords become
// placeholders ("{server_id}", "{iso_seconds}", ...; their meaning and patterns are written into the
// JSON), headers are cut down to the ones a client depends on, and the situation each sample
// needs ("given") is taken from the table below, written from INDEX.md and BEHAVIOUR.md.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const dir = path.resolve(process.argv[2] ?? path.join(here, '../../../../shared/anchors/nova/transcripts'))
const out = path.join(here, 'nova-rescue.json')

// ---------------------------------------------------------------------------------------------
// Parsing the transcripts: "### REQUEST", "### RESPONSE", optional "### NOTE"; bodies are cut at
// their Content-Length (a truncated JSON body ends in a space that matters).

type Header = [name: string, value: string]
interface Message {
  line: string
  headers: Header[]
  body: string
}
interface Exchange {
  request: Message
  response: Message
  note: string | undefined
}

function parseMessage(text: string): Message {
  const blank = text.indexOf('\n\n')
  const head = (blank < 0 ? text : text.slice(0, blank)).split('\n')
  const rest = blank < 0 ? '' : text.slice(blank + 2)
  const headers = head
    .slice(1)
    .filter(Boolean)
    .map((l): Header => {
      const i = l.indexOf(':')
      return [l.slice(0, i).trim(), l.slice(i + 1).trim()]
    })
  const length = headers.find(([n]) => n.toLowerCase() === 'content-length')
  const body = length ? Buffer.from(rest).subarray(0, Number(length[1])).toString() : rest.trim()
  return { line: head[0]!, headers, body }
}

function parseTranscript(text: string): Exchange[] {
  return text
    .split(/^### REQUEST\n/m)
    .slice(1)
    .map((part) => {
      const [req, rest = ''] = part.split(/^### RESPONSE\n/m)
      const [resp = '', note] = rest.split(/^### NOTE\n/m)
      return { request: parseMessage(req!), response: parseMessage(resp), note: note?.trim() || undefined }
    })
}

// ---------------------------------------------------------------------------------------------
// What each transcript needs. `server` names a situation the test knows how to build:
//   active, rescued, rescuing (a rescue POSTed, still running), unrescuing, unrescued (after one
//   rescue/unrescue cycle), shutoff, rescued-from-shutoff, unrescued-from-shutoff, error (vm_state
//   error as os-resetState leaves it), rescued-from-error, paused, locked-by-owner, locked-by-admin,
//   rescued-locked-by-admin, deleted, cycled (created, then `cycles` rescue/unrescue cycles).
// `actionRequest` binds {action_request_id} to the newest instance action of that name.

type Who = 'admin' | 'demo'
interface Given {
  server: string
  owner: Who
  name: string
  cycles?: number
  actionRequest?: 'rescue' | 'unrescue'
}
interface Spec {
  given: Given | null
  as?: Who | 'anonymous' | 'bogus-token'
  note?: string
}

const capA = (server: string, extra: Partial<Given> = {}): Given => ({ server, owner: 'admin', name: 'cap-a', ...extra })
const capOff = (server: string): Given => ({ server, owner: 'admin', name: 'cap-off' })
const demoServer = (server: string, extra: Partial<Given> = {}): Given => ({ server, owner: 'demo', name: 'cap-demo', ...extra })

const SPECS: Record<string, Spec> = {
  'e1-get-root-versions': { given: null, as: 'anonymous' },
  'e2-get-v2.1': { given: null, as: 'anonymous' },
  'e3-get-v2.1-slash': { given: null, as: 'anonymous' },
  'e4-get-v2.1-with-token': { given: null },
  'e5-get-v2-legacy': { given: null, as: 'anonymous' },
  'e6-get-v2.1-mv-latest': { given: null, as: 'anonymous' },

  'a1-rescue-null': { given: capA('active') },
  'a1-rescue-null--unrescue': { given: capA('rescued') },
  'a2-rescue-empty-object': { given: capA('active') },
  'a2-rescue-empty-object--unrescue': { given: capA('rescued') },
  'a3-rescue-image-ref': { given: capA('active') },
  'a3-rescue-image-ref--unrescue': { given: capA('rescued') },
  'a4-rescue-adminpass': { given: capA('active') },
  'a4-rescue-adminpass--unrescue': { given: capA('rescued') },
  'a5-rescue-legacy-string-none': { given: capA('active') },
  'a5b-rescue-legacy-string-empty': { given: capA('active') },
  'a5c-rescue-true': { given: capA('active') },
  'a6-rescue-adminpass-and-image': { given: capA('active') },
  'a6-rescue-adminpass-and-image--unrescue': { given: capA('rescued') },
  'a7-rescue-adminpass-empty-string': { given: capA('active') },
  'a7-rescue-adminpass-empty-string--unrescue': { given: capA('rescued') },

  'b1-get-during-rescue-rescuing': {
    given: capA('rescuing'),
    note:
      'anchor defect: the transcript body is the post-rescue document (identical to b1-get-during-rescue-rescue); ' +
      'its name, its NOTE (27.0 ms) and sequences.json (a1-rescue-null at 27.0 ms) say ACTIVE/active/rescuing/1. ' +
      'The generator keeps the body shape and takes the four state fields from sequences.json (status ACTIVE adds progress 0, as in b4).',
  },
  'b1-get-during-rescue-rescue': { given: capA('rescued') },
  'b2-get-after-rescue': { given: capA('rescued') },
  'b2b-get-after-rescue-mv2.87': { given: capA('rescued') },
  'b2c-list-detail-while-rescued': { given: capA('rescued') },
  'b2d-get-after-rescue-as-demo-404': { given: capA('rescued'), as: 'demo' },
  'b3-get-during-unrescue-unrescuing': { given: capA('unrescuing') },
  'b3-get-during-unrescue-active': { given: capA('unrescued') },
  'b4-get-after-unrescue': { given: capA('unrescued') },

  'c1-rescue-already-rescued': { given: capA('rescued') },
  'c2-rescue-nonexistent-uuid': { given: null },
  'c2b-rescue-nonexistent-non-uuid': { given: null },
  'c2c-unrescue-nonexistent': { given: null },
  'c3-malformed-json': { given: capA('active') },
  'c3b-body-not-object': { given: capA('active') },
  'c3c-empty-object': { given: capA('active') },
  'c3d-unknown-property': { given: capA('active') },
  'c3e-adminpass-not-string': { given: capA('active') },
  'c3f-extra-top-level-key': { given: capA('active') },
  'c3g-empty-body': { given: capA('active') },
  'c3h-two-actions': { given: capA('active') },
  'c3i-text-plain-content-type': { given: capA('active') },
  'c3j-no-content-type': { given: capA('active') },
  'c3k-unknown-action': { given: capA('active') },
  'c4-rescue-image-ref-nonexistent-uuid': { given: capA('active') },
  'c4b-rescue-image-ref-not-uuid': { given: capA('active') },
  'c5-no-token': { given: capA('active'), as: 'anonymous' },
  'c5b-bad-token': { given: capA('active'), as: 'bogus-token' },
  'c6-get-on-action': { given: capA('active') },
  'c6b-put-on-action': { given: capA('active') },
  'c6c-delete-on-action': { given: capA('active') },
  'c7-demo-rescues-admin-server': { given: capA('active'), as: 'demo' },
  'c7b-demo-unrescues-admin-server': { given: capA('rescued'), as: 'demo' },
  'c8-unrescue-not-rescued': { given: capA('active') },
  'c13-rescue-while-rescuing': { given: capA('rescuing') },
  'c13b-unrescue-while-unrescuing': { given: capA('unrescuing') },
  'c11-rescue-mv-2.1': { given: capA('active') },
  'c11-rescue-mv-2.87': { given: capA('active') },
  'c11-rescue-mv-2.93': { given: capA('active') },
  'c11-rescue-mv-latest': { given: capA('active') },
  'c11-rescue-mv-2.latest': { given: capA('active') },
  'c11-rescue-mv-2.0': { given: capA('active') },
  'c11-rescue-mv-2.96': { given: capA('active') },
  'c11-rescue-mv-3.0': { given: capA('active') },
  'c11b-rescue-legacy-header-2.87': { given: capA('active') },
  'c11c-unrescue-mv-2.87': { given: capA('rescued') },

  'd1-instance-actions-list': { given: capA('cycled', { cycles: 24 }) },
  'd2-instance-actions-list-mv2.87': { given: capA('cycled', { cycles: 24 }) },
  'd3-instance-action-rescue-detail': { given: capA('cycled', { cycles: 24, actionRequest: 'rescue' }) },
  'd3b-instance-action-rescue-detail-mv2.87': { given: capA('cycled', { cycles: 24, actionRequest: 'rescue' }) },
  'd4-instance-action-unrescue-detail': { given: capA('cycled', { cycles: 24, actionRequest: 'unrescue' }) },
  'd5-instance-actions-list-demo-forbidden-project': { given: capA('active'), as: 'demo' },

  'c9-get-shutoff-before': { given: capOff('shutoff') },
  'c9-rescue-shutoff': { given: capOff('shutoff') },
  'c9b-get-shutoff-rescued': { given: capOff('rescued-from-shutoff') },
  'c9c-unrescue-shutoff-origin': { given: capOff('rescued-from-shutoff') },
  'c9d-get-after-unrescue-of-shutoff-origin': { given: capOff('unrescued-from-shutoff') },
  'c16b-rescue-error-state': { given: capOff('error') },
  'c16c-get-after-rescue-from-error': { given: capOff('rescued-from-error') },
  'c17-rescue-paused': { given: capOff('paused') },

  'c10a-demo-rescue-own-server': { given: demoServer('active'), as: 'demo' },
  'c10b-demo-unrescue-own-server': { given: demoServer('rescued'), as: 'demo' },
  'd6-demo-instance-actions-own-server': { given: demoServer('cycled', { cycles: 1 }), as: 'demo' },
  'd7-demo-instance-action-detail-own-server': { given: demoServer('cycled', { cycles: 1, actionRequest: 'rescue' }), as: 'demo' },
  'd7b-demo-instance-action-detail-own-server-mv2.87': { given: demoServer('cycled', { cycles: 1, actionRequest: 'rescue' }), as: 'demo' },
  'c10c-demo-lock-own': { given: demoServer('active'), as: 'demo' },
  'c10d-demo-rescue-locked-by-self': { given: demoServer('locked-by-owner'), as: 'demo' },
  'c10e-demo-rescue-locked-mv2.87': { given: demoServer('locked-by-owner'), as: 'demo' },
  'c10f-admin-lock-demo-server': { given: demoServer('active') },
  'c10g-demo-rescue-locked-by-admin': { given: demoServer('locked-by-admin'), as: 'demo' },
  'c10h-admin-rescue-locked-server': { given: demoServer('locked-by-admin') },
  'c10i-demo-unrescue-locked': { given: demoServer('rescued-locked-by-admin'), as: 'demo' },
  'c10j-admin-unrescue-locked': { given: demoServer('rescued-locked-by-admin') },
  'c15-rescue-deleted-server': { given: demoServer('deleted'), as: 'demo' },
}

/** Transcripts that are not replayed, and why. */
const NOT_REPLAYED: Record<string, string> = {
  'c16-reset-state-error':
    'os-resetState is not a Skiff action: the test sets vm_state error through the store, as os-resetState would (given "error")',
}

// ---------------------------------------------------------------------------------------------
// Placeholders. Literal ids of the reference cloud become the names of what they were.

const PLACEHOLDERS = {
  server_id: { means: 'id of the server the sample is given' },
  project_id: { means: "project id of the given server's owner" },
  user_id: { means: "user id of the given server's owner" },
  image_id: { means: 'the image the given server was built from' },
  rescue_image_id: { means: 'another public image, used as rescue_image_ref' },
  host: { means: 'the compute host of the given server' },
  host_id: { means: 'hostId: sha224 of project id and host, hex', pattern: '[0-9a-f]{56}' },
  instance_name: { means: 'OS-EXT-SRV-ATTR:instance_name', pattern: 'instance-[0-9a-f]{8}' },
  action_request_id: {
    means: 'request id of the newest instance action named by given.actionRequest',
    pattern: 'req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}',
  },
  request_id: {
    means: "this answer's request id: every occurrence in one answer is the same value",
    pattern: 'req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}',
    bind: true,
  },
  req_id: { means: 'some request id', pattern: 'req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' },
  generated_password: { means: 'nova.utils.generate_password: 12 characters, no 0, 1, I, O, l', pattern: '[2-9A-HJ-NP-Za-km-z]{12}' },
  iso_seconds: { means: 'server created/updated', pattern: '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z' },
  iso_micros: { means: 'launched_at, instance-action times (no zone)', pattern: '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}' },
  reservation_id: { means: 'OS-EXT-SRV-ATTR:reservation_id', pattern: 'r-[0-9a-z]{8}' },
} as const

const LITERALS: [string, string][] = [
  ['0f108d76-2a92-415b-8117-137f6a6c3248', '{server_id}'], // cap-a (admin)
  ['189639ea-18d4-4667-989c-680b84d53e51', '{server_id}'], // cap-off (admin)
  ['1d57289f-2d85-4d97-a410-eabfa0d371f6', '{server_id}'], // demo's server
  ['dd716608-17e8-4c34-bb50-f8eb98da1581', '{server_id}'], // s1 of the CLI run
  ['d11102bea6aa401599b34bc120c55c7c', '{project_id}'], // admin
  ['9f0a7b6b240c43d7a6ed07e3260d64ff', '{project_id}'], // demo
  ['c9a31f70512046898e15bde658f56771', '{user_id}'], // admin
  ['f6881ceea67d48eab69782cbd0604fea', '{user_id}'], // demo
  ['769aced4-1e44-48ef-89c2-f13342871251', '{image_id}'],
  ['4e23d221-f7ea-4e8d-a291-59750510d049', '{rescue_image_id}'],
  ['6142be23362e6a61a5cb6e2122eedb4a76e196d4f2a343050988ab51', '{host_id}'], // admin's project on osref-compute
  ['52dbb401f0fb63c08a92f38fdbdace33451d979ca392111bb100204b', '{host_id}'], // demo's project on osref-compute
  ['osref-compute', '{host}'],
]
// Constants of Nova's version documents, not times to hide.
const FIXED = new Set(['2011-01-21T11:33:21Z', '2013-07-23T11:33:21Z'])
const REQ = /req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g

function placeholdText(s: string, ctx: { actionRequestId?: string }): string {
  if (FIXED.has(s)) return s
  for (const [literal, token] of LITERALS) s = s.split(literal).join(token)
  s = s.replace(REQ, (m) => (m === ctx.actionRequestId ? '{action_request_id}' : '{req_id}'))
  s = s.replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}/g, '{iso_micros}')
  s = s.replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/g, '{iso_seconds}')
  s = s.replace(/^instance-[0-9a-f]{8}$/, '{instance_name}')
  return s
}

function placeholdJson(v: unknown, ctx: { actionRequestId?: string; givenPassword: boolean }, key?: string): unknown {
  if (typeof v === 'string') {
    if (key === 'adminPass' && !ctx.givenPassword) return '{generated_password}'
    if (key === 'OS-EXT-SRV-ATTR:reservation_id') return '{reservation_id}'
    return placeholdText(v, ctx)
  }
  if (Array.isArray(v)) return v.map((x) => placeholdJson(x, ctx))
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, placeholdJson(x, ctx, k)]))
  return v
}

// ---------------------------------------------------------------------------------------------
// Samples.

const KEEP_REQUEST_HEADERS = ['content-type', 'openstack-api-version', 'x-openstack-nova-api-version']
const KEEP_RESPONSE_HEADERS = [
  'content-type',
  'openstack-api-version',
  'x-openstack-nova-api-version',
  'vary',
  'www-authenticate',
  'allow',
  'location',
  'x-openstack-request-id',
  'x-compute-request-id',
]
const VERSION_HEADERS = ['openstack-api-version', 'x-openstack-nova-api-version', 'vary']
type StateTuple = [string, string, string | null, number]

const sequences = JSON.parse(readFileSync(path.join(dir, 'sequences.json'), 'utf8')) as Record<string, { sequence: [number, StateTuple][] }>

function tokenOf(headers: Header[]): Spec['as'] {
  const t = headers.find(([n]) => n.toLowerCase() === 'x-auth-token')?.[1]
  if (t === undefined) return 'anonymous'
  if (t === '<ADMIN_TOKEN>') return 'admin'
  if (t === '<DEMO_TOKEN>') return 'demo'
  return 'bogus-token'
}

function sample(name: string, file: string, ex: Exchange, spec: Spec) {
  const [method, url] = ex.request.line.split(' ') as [string, string]
  const rawPath = url.replace(/^https?:\/\/[^/]+/, '')
  const actionRequestId = /\/os-instance-actions\/(req-[0-9a-f-]{36})$/.exec(rawPath)?.[1]
  const reqHeaders = Object.fromEntries(
    ex.request.headers.map(([n, v]) => [n.toLowerCase(), v]).filter(([n]) => KEEP_REQUEST_HEADERS.includes(n!)),
  )
  const as = tokenOf(ex.request.headers)
  if (spec.as !== undefined && spec.as !== as) throw new Error(`${name}: spec says ${spec.as}, transcript ${as}`)
  // A JSON body is kept as JSON; a malformed or empty one (sent with a body-bearing method) as text.
  let requestBody: { body?: unknown; rawBody?: string } = {}
  let givenPassword = false
  try {
    const parsed = JSON.parse(ex.request.body) as { rescue?: { adminPass?: unknown } }
    givenPassword = typeof parsed?.rescue === 'object' && parsed.rescue !== null && 'adminPass' in parsed.rescue
    requestBody = { body: placeholdJson(parsed, { givenPassword: true }) }
  } catch {
    if (ex.request.body !== '' || method === 'POST' || method === 'PUT') requestBody = { rawBody: ex.request.body }
  }

  const status = Number(ex.response.line.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const [n, v] of ex.response.headers) {
    const lower = n.toLowerCase()
    if (!KEEP_RESPONSE_HEADERS.includes(lower)) continue
    // Two Vary fields are one comma-separated list (RFC 9110 5.3).
    headers[lower] = headers[lower] !== undefined ? `${headers[lower]}, ${v}` : v
    if (lower.endsWith('request-id')) headers[lower] = '{request_id}'
  }
  const absentHeaders = VERSION_HEADERS.filter((h) => headers[h] === undefined)
  let body: unknown = null
  if (ex.response.body !== '') body = placeholdJson(JSON.parse(ex.response.body), { actionRequestId, givenPassword })

  const seq = sequences[name]?.sequence
  const states = seq ? { during: seq[0]![1], after: seq[seq.length - 1]![1] } : undefined
  if (name === 'b1-get-during-rescue-rescuing') {
    // See the note in SPECS: the four state fields from sequences.json, the rest from the transcript.
    const during = sequences['a1-rescue-null']!.sequence[0]![1]
    const server = (body as { server: Record<string, unknown> }).server
    const fixed: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(server)) {
      fixed[k] = v
      if (k === 'OS-DCF:diskConfig' && during[0] === 'ACTIVE') fixed.progress = 0
    }
    Object.assign(fixed, {
      status: during[0],
      'OS-EXT-STS:vm_state': during[1],
      'OS-EXT-STS:task_state': during[2],
      'OS-EXT-STS:power_state': during[3],
    })
    body = { server: fixed }
  }

  return {
    name,
    transcript: file,
    ...(spec.note || ex.note ? { note: [ex.note, spec.note].filter(Boolean).join(' | ') } : {}),
    given: spec.given,
    as,
    request: {
      method,
      path: placeholdText(rawPath, { actionRequestId }),
      headers: reqHeaders,
      ...requestBody,
    },
    response: { status, headers, absentHeaders, body },
    ...(states ? { states } : {}),
  }
}

/** The one HTTP exchange in cli-e2e.txt: `openstack --debug server rescue --image rescue --password MyPass123 s1`. */
function cliSample() {
  const text = readFileSync(path.join(dir, 'cli-e2e.txt'), 'utf8')
  const req = /^REQ: curl -g -i -X (\w+) (\S+) (.*) -d '(.*)'$/m.exec(text)
  const resp = /^RESP: \[(\d+)\] (.*)$/m.exec(text)
  const respBody = /^RESP BODY: (.*)$/m.exec(text)
  if (!req || !resp || !respBody) throw new Error('cli-e2e.txt: the --debug exchange is not where it was')
  const reqHeaders: Record<string, string> = {}
  for (const m of req[3]!.matchAll(/-H "([^:]+): ([^"]*)"/g))
    if (KEEP_REQUEST_HEADERS.includes(m[1]!.toLowerCase())) reqHeaders[m[1]!.toLowerCase()] = m[2]!
  const headers: Record<string, string> = {}
  // novaclient prints the headers as "Name: value" pairs on one line; the known names delimit them.
  const names = [
    'Content-Length',
    'Content-Type',
    'OpenStack-API-Version',
    'Vary',
    'X-OpenStack-Nova-API-Version',
    'x-compute-request-id',
    'x-openstack-request-id',
  ]
  const line = resp[2]!
  for (const [i, n] of names.entries()) {
    const start = line.indexOf(`${n}: `)
    const next =
      names
        .slice(i + 1)
        .map((m) => line.indexOf(` ${m}: `))
        .filter((x) => x > start)[0] ?? line.length
    const v = line.slice(start + n.length + 2, next).trim()
    const lower = n.toLowerCase()
    if (KEEP_RESPONSE_HEADERS.includes(lower)) headers[lower] = lower.endsWith('request-id') ? '{request_id}' : v
  }
  return {
    name: 'cli-e2e-rescue-debug',
    transcript: 'cli-e2e.txt',
    note: 'python-novaclient (OSC 6.0.0) --debug: the request openstack server rescue --image rescue --password MyPass123 sends',
    given: { server: 'active', owner: 'admin', name: 's1' } satisfies Given,
    as: 'admin',
    request: {
      method: req[1],
      path: placeholdText(req[2]!.replace(/^https?:\/\/[^/]+/, ''), {}),
      headers: reqHeaders,
      body: placeholdJson(JSON.parse(req[4]!), { givenPassword: true }),
    },
    response: {
      status: Number(resp[1]),
      headers,
      absentHeaders: [],
      body: placeholdJson(JSON.parse(respBody[1]!), { givenPassword: true }),
    },
  }
}

const files = readdirSync(dir).filter((f) => f.endsWith('.txt') && f !== 'cli-e2e.txt')
const known = new Set([...Object.keys(SPECS), ...Object.keys(NOT_REPLAYED)])
const unknown = files.map((f) => f.replace(/\.txt$/, '')).filter((n) => !known.has(n))
if (unknown.length) throw new Error(`transcripts without a spec: ${unknown.join(', ')}`)

const samples = []
for (const [name, spec] of Object.entries(SPECS)) {
  const file = `${name}.txt`
  const exchanges = parseTranscript(readFileSync(path.join(dir, file), 'utf8'))
  if (exchanges.length !== 1) throw new Error(`${file}: ${exchanges.length} exchanges`)
  samples.push(sample(name, file, exchanges[0]!, spec))
}
samples.push(cliSample())

const golden = {
  about:
    'Golden samples of the compute API around rescue, derived by generate-nova-rescue.ts from raw transcripts of real ' +
    'OpenStack Nova 26.2.2 (Zed, fake driver, default policy, no Neutron: addresses are {}). Strings may hold {placeholders}; ' +
    'see `placeholders`. response.headers: the headers a client depends on (two Vary fields joined with ", "); ' +
    'response.absentHeaders: version headers Nova did not send. states: (status, vm_state, task_state, power_state) ' +
    'seen by a GET right after the POST (during) and once the task ended (after), from sequences.json.',
  source: 'shared/anchors/nova/transcripts',
  placeholders: PLACEHOLDERS,
  notReplayed: Object.entries(NOT_REPLAYED).map(([name, why]) => ({ transcript: `${name}.txt`, why })),
  samples,
}
writeFileSync(out, JSON.stringify(golden, null, 2) + '\n')
console.log(
  `${samples.length} samples from ${files.length + 1} transcript files (${Object.keys(NOT_REPLAYED).length} not replayed) → ${path.relative(process.cwd(), out)}`,
)
