// An admin's requests on a live migration of a real VM under way (qemu driver), between two agents
// of this machine on PostgreSQL, as Nova's libvirt driver answers them: the source (`skiff serve`,
// host hv-a) copies memory at most 8 MiB/s (--live-migration-bandwidth) and the guest dirties
// memory faster (a loop copying 16 MiB of random bytes in a tmpfs), so the copy does not end by
// itself. DELETE /servers/{id}/migrations/{mid} (abort): the copy is cancelled, the guest runs on
// its source (the same boot, the loop still running), the migration `cancelled`, no fault, nothing
// left on the destination. Then force_complete of the next attempt: the guest is paused on the
// source so that the copy converges, and runs on the destination (same boot, the loop alive); the
// migration `completed`, its dest_host the destination's --migration-address. While it runs, the
// server's migration shows how far the copy is (memory and disk bytes).
// Skipped where QEMU and the guest packages are absent (except in CI) or without a PostgreSQL.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { guestSkipReason } from '../helpers/qemu.ts'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts'
import { startQemuSkiff, type QemuSkiff } from './helpers/qemu-skiff.ts'
import { openrcToken, type SkiffProcess } from './helpers/skiff-process.ts'
import { qemuPids, sshOk } from './helpers/vm.ts'

const skip = guestSkipReason() || (testPostgresUrl() ? false : 'needs PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL)')
const BOOT_MS = 300_000
const MOVE_MS = 300_000

describe('qemu driver: abort and force_complete of a live migration under way', { skip, timeout: 20 * 60_000 }, () => {
  const dirs = {
    'hv-a': mkdtempSync(path.join(tmpdir(), 'skiff-e2e-lmreq-a-')),
    'hv-b': mkdtempSync(path.join(tmpdir(), 'skiff-e2e-lmreq-b-')),
  }
  let database: TestDatabase
  let vm: QemuSkiff
  let skiff: SkiffProcess
  let agent: AgentProcess | undefined
  let token = ''

  before(async () => {
    database = await freshDatabase('postgres')
    vm = await startQemuSkiff({
      sshPorts: '24200-24249',
      extraArgs: ['--database-url', database.url, '--agent-host', 'hv-a', '--live-migration-bandwidth', '8'],
      startTimeoutMs: 240_000,
      dataDir: dirs['hv-a'],
    })
    skiff = vm.skiff
    agent = await startAgentProcess({
      host: 'hv-b',
      databaseUrl: database.url,
      dataDir: dirs['hv-b'],
      startTimeoutMs: 240_000,
      extraArgs: ['--driver', 'qemu', '--secret-key-file', path.join(dirs['hv-a'], 'secret.key'), '--qemu-ssh-ports', '24250-24299'],
    })
    token = await openrcToken(skiff.urls.identity, skiff.openrc.admin)
  })

  after(async () => {
    await vm?.stop({ qemuDirs: [path.join(dirs['hv-b'], 'qemu')], agents: [agent] })
    await database?.drop()
    for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true })
  })

  const call = async (method: string, p: string, body?: unknown, version = '2.80') => {
    const res = await fetch(`${skiff.urls.compute}${p}`, {
      method,
      headers: { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': `compute ${version}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} }
  }
  /** The server once it shows `status` with no task. */
  const settled = async (id: string, status: string, timeoutMs = MOVE_MS) => {
    let s: Record<string, any> = {}
    for (const t0 = Date.now(); Date.now() - t0 < timeoutMs; await sleep(500)) {
      s = (await call('GET', `/servers/${id}`)).body.server as Record<string, any>
      if (s.status === status && !s['OS-EXT-STS:task_state']) return s
      if (s.status === 'ERROR') break
    }
    throw new Error(`server ${id} did not reach ${status}: ${s.status} ${s['OS-EXT-STS:task_state']} ${JSON.stringify(s.fault)}`)
  }
  const sshPort = async (id: string) => (await call('GET', `/servers/${id}/access`)).body.access.ssh.port as number
  const migrations = async (id: string) =>
    (await call('GET', `/os-migrations?instance_uuid=${id}&migration_type=live-migration`)).body.migrations as Record<string, any>[]
  /** The newest live migration of the server once it is in `status`. */
  const migrationIn = async (id: string, status: string) => {
    let m: Record<string, any> | undefined
    for (const t0 = Date.now(); Date.now() - t0 < MOVE_MS; await sleep(200)) {
      m = (await migrations(id))[0]
      if (m?.status === status) return m
      if (m && ['completed', 'error', 'cancelled'].includes(m.status)) break
    }
    throw new Error(`migration of ${id}: ${JSON.stringify(m)} (wanted ${status})`)
  }
  /** The guest's boot, whether process `pid` runs, and how many copies the dirtying loop has made. */
  const guest = async (port: number, pass: string, pid: string) => {
    const { out } = await sshOk(port, pass, `cat /proc/sys/kernel/random/boot_id; kill -0 ${pid} 2>/dev/null && echo alive || echo gone`)
    const [bootId, proc] = out.trim().split('\n')
    return { bootId, proc }
  }
  const liveMigrate = (id: string) =>
    call('POST', `/servers/${id}/action`, { 'os-migrateLive': { host: 'hv-b', block_migration: 'auto' } }, '2.30')

  test('abort while the copy runs, then force_complete of the next attempt', async () => {
    const imageRef = vm.baseImageId
    const pass = `P-${randomBytes(6).toString('hex')}`
    const created = await call('POST', '/servers', {
      server: { name: 'busy', imageRef, flavorRef: '1', adminPass: pass, networks: 'auto', host: 'hv-a' },
    })
    assert.equal(created.status, 202, JSON.stringify(created.body))
    const id = created.body.server.id as string
    await settled(id, 'ACTIVE', BOOT_MS)
    const port = await sshPort(id)
    // Memory dirtied faster than 8 MiB/s, for as long as the guest runs.
    const { out } = await sshOk(
      port,
      pass,
      'head -c 16777216 /dev/urandom > /run/src && setsid sh -c "while :; do cp /run/src /run/dst; done" </dev/null >/dev/null 2>&1 & echo $!',
    )
    const pid = out.trim()
    const before = await guest(port, pass, pid)
    assert.equal(before.proc, 'alive')

    // Abort: the copy under way is cancelled, the guest runs on where it was.
    assert.equal((await liveMigrate(id)).status, 202)
    const running = await migrationIn(id, 'running')
    let t0 = Date.now()
    const abort = await call('DELETE', `/servers/${id}/migrations/${running.id}`, undefined, '2.24')
    assert.equal(abort.status, 202, JSON.stringify(abort.body))
    const cancelled = await migrationIn(id, 'cancelled')
    const back = await settled(id, 'ACTIVE')
    console.log(`# abort: migration cancelled ${((Date.now() - t0) / 1000).toFixed(1)} s after the DELETE`)
    assert.equal(cancelled.id, running.id)
    assert.equal(back['OS-EXT-SRV-ATTR:host'], 'hv-a')
    assert.equal(back['OS-EXT-STS:power_state'], 1)
    assert.equal(back.fault, undefined, 'an abort is no fault')
    const afterAbort = await guest(await sshPort(id), pass, pid)
    assert.deepEqual(afterAbort, before, 'the same boot, the loop still running')
    const destDir = path.join(dirs['hv-b'], 'qemu', 's')
    assert.deepEqual(existsSync(destDir) ? readdirSync(destDir) : [], [], 'the destination dropped its VM dir')
    assert.deepEqual(qemuPids(path.join(dirs['hv-b'], 'qemu')), [], 'no QEMU left on the destination')
    const actions = (await call('GET', `/servers/${id}/os-instance-actions`)).body.instanceActions as { action: string }[]
    assert.ok(actions.some((a) => a.action === 'live_migration_cancel'))

    // Force complete: the guest is paused on the source until the copy has caught up; it runs on hv-b.
    assert.equal((await liveMigrate(id)).status, 202)
    const second = await migrationIn(id, 'running')
    // Under way: how far the copy is, as the source's agent saves it every few seconds.
    let underWay: Record<string, any> = {}
    for (const w0 = Date.now(); Date.now() - w0 < 60_000 && !(underWay.memory_processed_bytes > 0); await sleep(500)) {
      underWay = (await call('GET', `/servers/${id}/migrations/${second.id}`, undefined, '2.23')).body.migration
    }
    console.log(`# under way: ${JSON.stringify(underWay)}`)
    assert.ok(underWay.memory_total_bytes >= 512 * 2 ** 20, "the guest's 512 MB")
    assert.ok(underWay.memory_processed_bytes > 0)
    assert.equal(underWay.disk_remaining_bytes, 0, 'the disk in sync before the memory copy began')
    t0 = Date.now()
    const force = await call('POST', `/servers/${id}/migrations/${second.id}/action`, { force_complete: null }, '2.22')
    assert.equal(force.status, 202, JSON.stringify(force.body))
    const completed = await migrationIn(id, 'completed')
    const moved = await settled(id, 'ACTIVE')
    console.log(`# force_complete: migration completed ${((Date.now() - t0) / 1000).toFixed(1)} s after the request`)
    assert.equal(moved['OS-EXT-SRV-ATTR:host'], 'hv-b')
    assert.equal(moved['OS-EXT-STS:power_state'], 1, 'running on the destination, not left paused')
    assert.match(skiff.output(), /guest paused to complete the copy \(force complete\)/)
    const afterMove = await guest(await sshPort(id), pass, pid)
    assert.deepEqual(afterMove, before, 'the same boot, the loop still running, on the destination')
    // Nova's dest_host: the destination's address (its --migration-address, 127.0.0.1 by default).
    assert.equal(completed.dest_compute, 'hv-b')
    assert.equal(completed.dest_host, '127.0.0.1')
  })
})
