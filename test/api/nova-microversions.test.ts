// Real Nova's answers at the microversions where keypairs, flavors, instance actions, limits,
// server groups, os-services, the 2.36 proxy removal and the version documents changed (the
// golden samples in golden/nova-microversions.json, derived from the shared anchors by
// golden/generate-nova-microversions.ts), replayed against Skiff: the same request at the same
// version must answer the same status, version headers and body shape (every key, every JSON
// type, ids and times by their pattern; the version documents, the refusal and the proxy API
// value for value). Then every answer is checked against Tempest's response schema for that
// microversion (golden/tempest_schemas.py, with Debian's Tempest).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { activeServer, startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

interface Sample {
  name: string
  method: string
  path: string
  microversion: string | null
  status: number
  headers: Record<string, string>
  body: unknown
}
const golden = JSON.parse(readFileSync(new URL('./golden/nova-microversions.json', import.meta.url), 'utf8')) as { samples: Sample[] }

const PATTERNS: Record<string, RegExp> = {
  '{request_id}': /^req-[0-9a-f-]{36}$/,
  '{uuid}': /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  '{hex32}': /^[0-9a-f]{32}$/,
  '{host_id}': /^([0-9a-f]{56})?$/,
  '{time}': /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$/,
  '{fingerprint}': /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/,
  '{public_key}': /^ssh-rsa /,
  '{host}': /./,
}

const type = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)

/**
 * Differences between a golden body and Skiff's, as paths. `exact`: values must be equal
 * (placeholders aside); otherwise only keys, JSON types and placeholder patterns. Each element of
 * an array is held to the golden's first (Nova's lists hold other things than Skiff's).
 */
function diff(g: unknown, a: unknown, exact: boolean, at = '$', pairwise = false): string[] {
  if (typeof g === 'string' && PATTERNS[g]) {
    return typeof a === 'string' && PATTERNS[g].test(a) ? [] : [`${at}: ${JSON.stringify(a)} is not ${g}`]
  }
  if (type(g) !== type(a)) return [`${at}: ${type(a)} where Nova has ${type(g)} (${JSON.stringify(g)})`]
  if (Array.isArray(g)) {
    const arr = a as unknown[]
    if (g.length === 0) return arr.length === 0 || !exact ? [] : [`${at}: not empty`]
    if (arr.length === 0) return [`${at}: empty where Nova has items`]
    if (pairwise && arr.length !== g.length) return [`${at}: ${arr.length} items where Nova has ${g.length}`]
    return arr.flatMap((x, i) => diff(exact || pairwise ? g[i] : g[0], x, exact, `${at}[${i}]`, pairwise))
  }
  if (g && typeof g === 'object') {
    const o = a as Record<string, unknown>
    const gk = Object.keys(g).sort()
    const ak = Object.keys(o).sort()
    if (JSON.stringify(gk) !== JSON.stringify(ak)) return [`${at}: keys ${JSON.stringify(ak)} where Nova has ${JSON.stringify(gk)}`]
    return gk.flatMap((k) => diff((g as Record<string, unknown>)[k], o[k], exact, `${at}.${k}`, pairwise))
  }
  return exact && g !== a ? [`${at}: ${JSON.stringify(a)} where Nova has ${JSON.stringify(g)}`] : []
}

/** Samples compared value for value: what does not depend on the cloud's contents. */
const EXACT = /^(version-|mv-2\.94|os-security-groups-)/
/** Samples whose lists hold different things in order (the internal zone, then the compute zones): item i to Nova's item i. */
const PAIRWISE = /^os-availability-zone-/

/** The availability zones' `hosts` are keyed by host name, as the golden file writes them. */
function hostKeys(v: unknown, key?: string): unknown {
  if (Array.isArray(v)) return v.map((x) => hostKeys(x))
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => (key === 'hosts' ? ['{host}', hostKeys(x)] : [k, hostKeys(x, k)])))
  return v
}

/** Tempest's schema of each sample (module, attribute), where Tempest has one. */
function tempestSchema(s: Sample): [string, string] | undefined {
  const minor = Number((s.microversion ?? '2.1').replace('latest', '2.93').split('.')[1])
  const table: [RegExp, string, string][] = [
    [/^flavor-show/, 'flavors', 'create_update_get_flavor_details'],
    [/^flavors-detail/, 'flavors', 'list_flavors_details'],
    [/^instance-action-show/, 'servers', 'show_instance_action'],
    [/^keypair-show/, 'keypairs', 'get_keypair'],
    [/^keypairs/, 'keypairs', 'list_keypairs'],
    [/^limits/, 'limits', 'get_limit'],
    [/^os-aggregates/, 'aggregates', 'list_aggregates'],
    [/^os-availability-zone/, 'availability_zone', 'list_availability_zone_list_detail'],
    [/^os-quota-sets/, 'quotas', 'get_quota_set_details'],
    [/^os-simple-tenant-usage/, 'tenant_usages', 'list_tenant_usage'],
    [/^os-services/, 'services', 'list_services'],
    [/^server-group-show/, 'server_groups', 'create_show_server_group'],
    [/^server-groups/, 'server_groups', 'list_server_groups'],
    [/^version-root/, 'versions', 'list_versions'],
    [/^version-v2\.1/, 'versions', 'get_one_version'],
  ]
  // Tempest 33 has no schema for the list from 2.58 (updated_at) nor for events with details (2.84).
  if (/^instance-actions-/.test(s.name)) return minor < 58 ? ['servers', 'list_instance_actions'] : undefined
  if (/^instance-action-show-/.test(s.name) && minor >= 84) return undefined
  if (/^os-security-groups-2\.1$/.test(s.name)) return ['security_groups', 'list_security_groups']
  // Tempest 33 has no schema for the 2.88 hypervisor view (no figures, uptime).
  if (/^os-hypervisors-detail-/.test(s.name)) return minor < 88 ? ['hypervisors', 'list_hypervisors_detail'] : undefined
  const hit = table.find(([re]) => re.test(s.name))
  return hit && s.status < 400 ? [hit[1], hit[2]] : undefined
}

let skiff: TestSkiff
let admin: string
const ids: Record<string, string> = {}

before(async () => {
  skiff = await startTestSkiff()
  admin = await skiff.token('admin')
  // What real Nova had when the anchors were read (INDEX.md): a keypair, a server group, a server
  // of the admin project with a finished action.
  const kp = await skiff.compute('POST', '/v2.1/os-keypairs', { token: admin, body: { keypair: { name: 'mv-probe-kp' } } })
  assert.equal(kp.statusCode, 200, kp.body)
  const sg = await skiff.compute('POST', '/v2.1/os-server-groups', {
    token: admin,
    body: { server_group: { name: 'mv-probe-sg', policies: ['anti-affinity'] } },
  })
  ids.group_id = sg.json().server_group.id
  ids.server_id = await activeServer(skiff, admin, 'mv-probe')
  const actions = await skiff.compute('GET', `/v2.1/servers/${ids.server_id}/os-instance-actions`, { token: admin })
  ids.request_id = actions.json().instanceActions[0].request_id
  ids.project_id = (
    await skiff.apps.identity.inject({
      method: 'GET',
      url: '/v3/auth/tokens',
      headers: { 'x-auth-token': admin, 'x-subject-token': admin },
    })
  ).json().token.project.id
})
after(() => skiff.close())

test('the golden file holds the anchors of these resources, at the versions where each changed', () => {
  assert.equal(golden.samples.length, 69)
  for (const v of ['2.1', '2.88', '2.93']) assert.ok(golden.samples.some((s) => s.name === `os-hypervisors-detail-${v}`))
  for (const v of ['2.1', '2.40', '2.93']) assert.ok(golden.samples.some((s) => s.name === `os-simple-tenant-usage-${v}`))
  for (const v of ['2.2', '2.10', '2.35', '2.92']) assert.ok(golden.samples.some((s) => s.name === `keypairs-${v}`))
  for (const v of ['2.55', '2.61', '2.75']) assert.ok(golden.samples.some((s) => s.name === `flavor-show-${v}`))
})

const answers: { name: string; module: string; attr: string; microversion: string | null; status: number; body: unknown }[] = []

for (const s of golden.samples) {
  test(`${s.name}: ${s.method} ${s.path} at ${s.microversion ?? 'no version'} answers as Nova`, async () => {
    const url = s.path.replace(/\{(\w+)\}/g, (_, k: string) => ids[k]!)
    const headers = s.microversion ? { 'x-openstack-nova-api-version': s.microversion } : undefined
    const res = await skiff.compute(s.method, url, { token: s.path === '/' || s.path === '/v2.1' ? undefined : admin, headers })
    assert.equal(res.statusCode, s.status, res.body)
    for (const name of ['openstack-api-version', 'x-openstack-nova-api-version'] as const) {
      assert.equal(res.headers[name], s.headers[name], name)
    }
    assert.equal(String(res.headers['content-type']).split(';')[0], s.headers['content-type']!.split(';')[0])
    const body = res.body ? (JSON.parse(res.body) as unknown) : null
    // Links are built from the listener's address; Nova's were 127.0.0.1:8774.
    const local = hostKeys(JSON.parse(JSON.stringify(body).replace(/"https?:\/\/[^/"]+/g, '"{base}'))) as unknown
    const golden = JSON.parse(JSON.stringify(s.body).replace(/"\{base\}/g, '"{base}')) as unknown
    assert.deepEqual(diff(golden, local, EXACT.test(s.name), '$', PAIRWISE.test(s.name)), [])
    const schema = tempestSchema(s)
    if (schema)
      answers.push({ name: s.name, module: schema[0], attr: schema[1], microversion: s.microversion, status: res.statusCode, body })
  })
}

test("every answer validates against Tempest's response schema for its microversion", () => {
  assert.ok(answers.length >= 45, `only ${answers.length} answers collected`)
  const script = fileURLToPath(new URL('./golden/tempest_schemas.py', import.meta.url))
  const r = spawnSync('/usr/bin/python3', [script], { input: JSON.stringify(answers), encoding: 'utf8' })
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
})
