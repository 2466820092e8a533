// Across hosts: `skiff serve --no-agent` processes and a `skiff agent`, each with its own data
// dir, one PostgreSQL; only the sealing key (and the client files) copied from the first data
// dir, as the README tells an operator. The API processes hold no driver: console output comes
// from the agent (a task round-trip) and fault rules reach it through the database. Needs a
// PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL); skipped without one.
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { activeServer, startTestSkiff } from '../helpers/skiff.ts'
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts'
import { pollUntil } from './helpers/process.ts'
import { openrcToken, startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const skip = testPostgresUrl() ? false : 'needs PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL)'

describe('across hosts: API processes and an agent with their own data dirs', { skip }, () => {
  let database: TestDatabase
  const dirs: string[] = []
  const apis: SkiffProcess[] = []
  let agent: AgentProcess | undefined
  let demo = ''
  let admin = ''
  let imageId = ''

  const call = async (i: number, token: string, method: string, url: string, body?: unknown) => {
    const res = await fetch(`${apis[i]!.urls.compute}${url.replace(/^\/v2\.1/, '')}`, {
      method,
      headers: { 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} }
  }
  const settled = (id: string, statuses: string[]) =>
    pollUntil(
      `server ${id} to be ${statuses.join(' or ')}`,
      async () => {
        const s = (await call(0, demo, 'GET', `/v2.1/servers/${id}`)).body.server as Record<string, any>
        return statuses.includes(s.status) && s['OS-EXT-STS:task_state'] === null ? s : undefined
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    )
  const tokenOf = (openrc: string) => openrcToken(apis[0]!.urls.identity, openrc)

  before(async () => {
    database = await freshDatabase('postgres')
    for (let i = 0; i < 3; i++) dirs.push(mkdtempSync(path.join(tmpdir(), `skiff-host${i}-`)))
    const apiArgs = ['--no-agent', '--database-url', database.url, '--host-down-after', '4']
    apis.push(await startSkiffProcess({ dataDir: dirs[0], extraArgs: apiArgs }))
    // What an operator copies to a new host: the sealing key, and the client files for an API host.
    copyFileSync(path.join(dirs[0]!, 'secret.key'), path.join(dirs[2]!, 'secret.key'))
    for (const f of ['secret.key', 'clouds.yaml', '.credentials.json', 'admin-openrc', 'demo-openrc', 'alt-openrc', 'reader-openrc']) {
      if (existsSync(path.join(dirs[0]!, f))) copyFileSync(path.join(dirs[0]!, f), path.join(dirs[1]!, f))
    }
    apis.push(await startSkiffProcess({ dataDir: dirs[1], extraArgs: apiArgs }))
    agent = await startAgentProcess({
      host: 'hv1',
      databaseUrl: database.url,
      dataDir: dirs[2]!,
      extraArgs: ['--simulated-delay', '20', '--host-down-after', '4'],
    })
    demo = await tokenOf(apis[0]!.openrc.demo)
    admin = await tokenOf(apis[0]!.openrc.admin)
    const images = (await (
      await fetch(`${apis[0]!.urls.image}/v2/images?name=skiff-base`, { headers: { 'x-auth-token': demo } })
    ).json()) as { images: { id: string }[] }
    imageId = images.images[0]!.id
  })

  after(async () => {
    await agent?.stop()
    for (const a of apis) await a.stop()
    await database?.drop()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  const create = async (name: string) => {
    const created = await call(0, demo, 'POST', '/v2.1/servers', { server: { name, imageRef: imageId, flavorRef: '1' } })
    assert.equal(created.status, 202, JSON.stringify(created.body))
    const id = created.body.server.id as string
    await settled(id, ['ACTIVE'])
    return id
  }

  test('console output is the live console of the agent, the same through both API processes as in one process', async () => {
    const id = await create('xhost')
    const a = await call(0, demo, 'POST', `/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} })
    const b = await call(1, demo, 'POST', `/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} })
    assert.equal(a.status, 200, JSON.stringify(a.body))
    assert.deepEqual(b, a)
    const tail = await call(1, demo, 'POST', `/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': { length: 1 } })
    assert.equal(tail.body.output, 'xhost login: ')

    // One process (the in-process agent) shows the same console for a server of the same name
    // (the SSH host key is each VM's own).
    const one = await startTestSkiff()
    try {
      const token = await one.token('demo')
      const local = await activeServer(one, token, 'xhost')
      const res = await one.compute('POST', `/v2.1/servers/${local}/action`, { token, body: { 'os-getConsoleOutput': {} } })
      const hostKey = (s: string) => s.replace(/host key SHA256:\S+/g, 'host key SHA256:...')
      assert.equal(hostKey(a.body.output as string), hostKey(res.json().output as string))
    } finally {
      await one.close()
    }
  })

  test('a fault injected through one API process fails the next rescue run by the agent, safely', async () => {
    const id = await create('xfault')
    const made = await call(1, admin, 'POST', '/v2.1/os-simulator/faults', {
      fault: { operation: 'rescue.boot', server_id: id, error: 'rescue disk unreadable', count: 1 },
    })
    assert.equal(made.status, 201, JSON.stringify(made.body))
    // Listed by the other API process too: the rules are rows.
    const listed = await call(0, admin, 'GET', '/v2.1/os-simulator/faults')
    assert.deepEqual(
      listed.body.faults.map((f: { id: string; remaining: number }) => [f.id, f.remaining]),
      [[made.body.fault.id, 1]],
    )

    assert.equal((await call(0, demo, 'POST', `/v2.1/servers/${id}/action`, { rescue: null })).status, 200)
    const back = await settled(id, ['ACTIVE', 'RESCUE'])
    assert.equal(back.status, 'ACTIVE', 'safe failure: back on its own disk')
    assert.equal(back.fault?.message, 'rescue disk unreadable')
    assert.deepEqual((await call(1, admin, 'GET', '/v2.1/os-simulator/faults')).body.faults, [], 'the one-shot rule was used up')

    // The next rescue runs clean.
    assert.equal((await call(1, demo, 'POST', `/v2.1/servers/${id}/action`, { rescue: null })).status, 200)
    assert.equal((await settled(id, ['ACTIVE', 'RESCUE'])).status, 'RESCUE')
  })
})
