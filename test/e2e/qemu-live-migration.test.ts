// Live migration of a real VM (qemu driver) between agents of this machine, each with its own data
// dir (no shared storage), on one PostgreSQL, checked from inside the guest as a user would: the
// guest goes on running on the other host (same boot, uptime not reset, a process started before
// still running), with the file written before and its volume (a marker written with dd, read at
// the same device; the volume's host the new one, its file there only); the migration
// `completed`, the source's VM gone.
// And two failures: a destination that cannot wait for the guest (an agent whose
// --migration-address is no address of this machine), and a destination whose QEMU is killed
// during the copy: the server stays ACTIVE on its host, running the same boot, its volume there
// (file, host, data), the migration in `error`, nothing left on the destination. And a volume
// written on one host's server, detached, then attached to another host's: its data handed over.
// Skipped where QEMU and the guest packages are absent (except in CI) or without a PostgreSQL.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { connectWebSocket } from '../../src/console/websocket.ts'
import { guestSkipReason } from '../helpers/qemu.ts'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts'
import { startQemuSkiff, type QemuSkiff } from './helpers/qemu-skiff.ts'
import { openrcToken, type SkiffProcess } from './helpers/skiff-process.ts'
import { qemuPids, sshOk } from './helpers/vm.ts'

const skip = guestSkipReason() || (testPostgresUrl() ? false : 'needs PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL)')
const BOOT_MS = 300_000
const MOVE_MS = 300_000

describe('qemu driver: live migration between two agents of this machine', { skip, timeout: 30 * 60_000 }, () => {
  const dirs = {
    'hv-a': mkdtempSync(path.join(tmpdir(), 'skiff-e2e-live-a-')),
    'hv-b': mkdtempSync(path.join(tmpdir(), 'skiff-e2e-live-b-')),
    'hv-c': mkdtempSync(path.join(tmpdir(), 'skiff-e2e-live-c-')),
  }
  let database: TestDatabase
  let vm: QemuSkiff
  let skiff: SkiffProcess
  const agents: AgentProcess[] = []
  let token = ''

  before(async () => {
    database = await freshDatabase('postgres')
    vm = await startQemuSkiff({
      sshPorts: '23750-23799',
      extraArgs: ['--database-url', database.url, '--agent-host', 'hv-a'],
      startTimeoutMs: 240_000,
      dataDir: dirs['hv-a'],
    })
    skiff = vm.skiff
    const agent = (host: 'hv-b' | 'hv-c', ports: string, extra: string[] = []) =>
      startAgentProcess({
        host,
        databaseUrl: database.url,
        dataDir: dirs[host],
        startTimeoutMs: 240_000,
        extraArgs: ['--driver', 'qemu', '--secret-key-file', path.join(dirs['hv-a'], 'secret.key'), '--qemu-ssh-ports', ports, ...extra],
      })
    agents.push(await agent('hv-b', '23800-23849'))
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: its QEMU cannot listen there.
    agents.push(await agent('hv-c', '23850-23899', ['--migration-address', '192.0.2.1']))
    token = await openrcToken(skiff.urls.identity, skiff.openrc.admin)
  })

  after(async () => {
    await vm?.stop({ qemuDirs: [dirs['hv-b'], dirs['hv-c']].map((d) => path.join(d, 'qemu')), agents })
    await database?.drop()
    for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true })
  })

  const call = async (method: string, p: string, body?: unknown, version = '2.74') => {
    const res = await fetch(`${skiff.urls.compute}${p}`, {
      method,
      headers: { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': `compute ${version}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} }
  }
  const view = async (id: string) => (await call('GET', `/servers/${id}`)).body.server as Record<string, any>
  /** The server once it shows `status` with no task. */
  const settled = async (id: string, status: string, timeoutMs: number) => {
    const t0 = Date.now()
    let s: Record<string, any> = {}
    while (Date.now() - t0 < timeoutMs) {
      s = await view(id)
      if (s.status === status && !s['OS-EXT-STS:task_state']) return s
      if (s.status === 'ERROR') break
      await sleep(500)
    }
    throw new Error(
      `server ${id} did not reach ${status}: ${s.status} ${s['OS-EXT-STS:task_state']} ${JSON.stringify(s.fault)}\n${skiff.output()}`,
    )
  }
  const sshPort = async (id: string) => (await call('GET', `/servers/${id}/access`)).body.access.ssh.port as number
  const migration = async (id: string) =>
    (await call('GET', `/os-migrations?instance_uuid=${id}&migration_type=live-migration`, undefined, '2.80')).body.migrations[0]
  /** What the guest says of its boot: its id, its uptime, whether process `pid` runs, the marker file. */
  const guest = async (port: number, pass: string, pid = '0') => {
    const { out, hostKey } = await sshOk(
      port,
      pass,
      `cat /proc/sys/kernel/random/boot_id; cut -d' ' -f1 /proc/uptime; kill -0 ${pid} 2>/dev/null && echo alive || echo gone; cat /root/marker`,
    )
    const [bootId, uptime, proc, marker] = out.trim().split('\n')
    return { bootId, uptime: Number(uptime), proc, marker, hostKey }
  }
  /**
   * A running server on `host`; with `volume`, a blank volume made at create (on the server's
   * host, plugged in after the first boot) and a marker written with dd on its disk.
   */
  const boot = async (name: string, host: string, opts: { volume?: boolean } = {}) => {
    const imageRef = vm.baseImageId
    const pass = `P-${randomBytes(6).toString('hex')}`
    const bdm = opts.volume
      ? {
          block_device_mapping_v2: [
            { boot_index: 0, uuid: imageRef, source_type: 'image', destination_type: 'local' },
            { source_type: 'blank', destination_type: 'volume', volume_size: 1, delete_on_termination: true },
          ],
        }
      : {}
    const res = await call('POST', '/servers', {
      server: { name, imageRef, flavorRef: '1', adminPass: pass, networks: 'auto', host, ...bdm },
    })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    const id = res.body.server.id as string
    await settled(id, 'ACTIVE', BOOT_MS)
    const port = await sshPort(id)
    // A process that lives on, outside the SSH session; the file on the disk.
    const { out } = await sshOk(
      port,
      pass,
      'echo written-before > /root/marker && sync; setsid sleep 86400 </dev/null >/dev/null 2>&1 & echo $!',
    )
    let volume: { id: string; dev: string; marker: string } | undefined
    if (opts.volume) {
      const attachments = (await call('GET', `/servers/${id}/os-volume_attachments`)).body.volumeAttachments
      const volumeId = attachments[0].volumeId as string
      const dev = await diskOf(port, pass, volumeId)
      const marker = `vol-${randomBytes(6).toString('hex')}`
      await sshOk(port, pass, `printf '%s' ${marker} | dd of=${dev} bs=512 conv=sync 2>/dev/null; sync`)
      volume = { id: volumeId, dev, marker }
    }
    return { id, pass, port, pid: out.trim(), volume }
  }
  /** The guest's disk whose serial is the volume id (virtio-blk keeps 20 characters), polled until the guest shows it. */
  const diskOf = async (port: number, pass: string, volumeId: string) => {
    const find = `for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "${volumeId.slice(0, 20)}" ] && echo /dev/\${d##*/}; done; true`
    for (const t0 = Date.now(); ; await sleep(1000)) {
      const dev = (await sshOk(port, pass, find)).out.trim()
      if (dev) return dev
      if (Date.now() - t0 > 120_000) throw new Error(`no disk with serial ${volumeId.slice(0, 20)} in the guest`)
    }
  }
  /** The volume as an admin sees it: its status and host (Cinder's os-vol-host-attr:host, `host@backend#pool`). */
  const volumeView = async (volumeId: string) => {
    const who = await fetch(`${skiff.urls.identity}/auth/tokens`, { headers: { 'x-auth-token': token, 'x-subject-token': token } })
    const project = ((await who.json()) as { token: { project: { id: string } } }).token.project.id
    const r = await fetch(`${skiff.urls.volume}/${project}/volumes/${volumeId}`, { headers: { 'x-auth-token': token } })
    const v = ((await r.json()) as { volume: Record<string, string> }).volume
    return { status: v.status, host: String(v['os-vol-host-attr:host']).split('@')[0] }
  }
  /** What the guest reads on the volume, at the device it was written on. */
  const volumeMarker = async (port: number, pass: string, v: { id: string; dev: string; marker: string }) => {
    assert.equal(await diskOf(port, pass, v.id), v.dev, 'the volume at the same device')
    return (await sshOk(port, pass, `dd if=${v.dev} bs=512 count=1 2>/dev/null | head -c ${v.marker.length}`)).out
  }
  /** The files of every host's data dir that name the volume, by host. */
  const volumeFiles = (volumeId: string) =>
    Object.fromEntries(
      Object.entries(dirs).map(([host, dir]) => [
        host,
        existsSync(path.join(dir, 'qemu'))
          ? readdirSync(path.join(dir, 'qemu'), { recursive: true })
              .map(String)
              .filter((f) => f.includes(volumeId))
          : [],
      ]),
    )
  const liveMigrate = (id: string, host: string) =>
    call('POST', `/servers/${id}/action`, { 'os-migrateLive': { host, block_migration: 'auto' } }, '2.30')

  test('the guest moves running with its volume: same boot, uptime not reset, its process alive, its file and volume there; the source is cleaned up', async () => {
    const { id, pass, port, pid, volume } = await boot('live', 'hv-a', { volume: true })
    const vol = volume!
    assert.equal((await volumeView(vol.id)).host, 'hv-a')
    const before = await guest(port, pass, pid)
    assert.equal(before.proc, 'alive')
    assert.equal(before.marker, 'written-before')
    const res = await liveMigrate(id, 'hv-b')
    assert.equal(res.status, 202, JSON.stringify(res.body))
    const t0 = Date.now()
    const s = await settled(id, 'ACTIVE', MOVE_MS)
    assert.equal(s['OS-EXT-SRV-ATTR:host'], 'hv-b', JSON.stringify(s.fault))
    const seconds = (Date.now() - t0) / 1000
    const newPort = await sshPort(id)
    const afterMove = await guest(newPort, pass, pid)
    console.log(`# live migration: ${seconds.toFixed(1)} s; guest ${JSON.stringify({ before, after: afterMove })}`)
    assert.equal(afterMove.bootId, before.bootId, 'the same boot')
    assert.ok(afterMove.uptime >= before.uptime, `uptime ${before.uptime} s → ${afterMove.uptime} s`)
    assert.equal(afterMove.proc, 'alive', 'the process started before still runs')
    assert.equal(afterMove.marker, 'written-before')
    assert.equal(afterMove.hostKey, before.hostKey, 'the same SSH host key')
    assert.equal((await call('GET', `/servers/${id}/access`)).body.access.ssh.host_key_fingerprint, before.hostKey)
    // Written after the move, on the destination's disk: the guest writes there.
    await sshOk(newPort, pass, 'echo written-after > /root/after && sync && cat /root/after')
    // The volume: mirrored with the disk, the same device, its marker; served from hv-b now.
    assert.equal(await volumeMarker(newPort, pass, vol), vol.marker)
    assert.deepEqual(await volumeView(vol.id), { status: 'in-use', host: 'hv-b' })
    const m = await waitMigration(id, 'completed')
    assert.equal(m.source_compute, 'hv-a')
    assert.equal(m.dest_compute, 'hv-b')
    // Nova's dest_host: the destination's address (its --migration-address).
    assert.equal(m.dest_host, '127.0.0.1')
    // The source's QEMU and files go with the migration's end.
    const sourceDir = path.join(dirs['hv-a'], 'qemu', 's', id)
    for (let i = 0; i < 100 && (existsSync(sourceDir) || qemuPids(sourceDir).length > 0); i++) await sleep(200)
    assert.equal(existsSync(sourceDir), false, 'the source VM dir is removed')
    assert.deepEqual(qemuPids(sourceDir), [], 'the source QEMU is stopped')
    assert.deepEqual(volumeFiles(vol.id), { 'hv-a': [], 'hv-b': [`v/${vol.id}.qcow2`], 'hv-c': [] }, "the volume's file on hv-b only")
    assert.equal(qemuPids(path.join(dirs['hv-b'], 'qemu', 's', id)).length, 1)
    // Its serial console, from the proxy of `skiff serve` (hv-a's machine) through hv-b's serial relay.
    const db = new pg.Client({ connectionString: database.url })
    await db.connect()
    const recorded = (await db.query<{ serial_endpoint: string }>('select serial_endpoint from server_access where server_id = $1', [id]))
      .rows
    await db.end()
    assert.match(recorded[0]?.serial_endpoint ?? '', /^relay:127\.0\.0\.1:\d+$/, 'hv-b records its relay as the console')
    const rc = await call('POST', `/servers/${id}/remote-consoles`, { remote_console: { protocol: 'serial', type: 'serial' } }, '2.6')
    assert.equal(rc.status, 200, JSON.stringify(rc.body))
    const ws = await connectWebSocket(rc.body.remote_console.url as string, { protocols: ['binary'] })
    let consoleOut = ''
    ws.onMessage = (data) => (consoleOut += data.toString('utf8'))
    for (let i = 0; i < 600 && !/login: *$/.test(consoleOut); i++) {
      // getty prints its prompt again for an empty line.
      if (i % 30 === 0) ws.send('\r')
      await sleep(100)
    }
    ws.close()
    assert.match(consoleOut, /login: *$/, 'the login prompt on the serial console through the relay')
    // And back: the destination is a source like any other.
    assert.equal((await liveMigrate(id, 'hv-a')).status, 202)
    assert.equal((await settled(id, 'ACTIVE', MOVE_MS))['OS-EXT-SRV-ATTR:host'], 'hv-a')
    const back = await guest(await sshPort(id), pass, pid)
    assert.deepEqual([back.bootId, back.proc, back.marker], [before.bootId, 'alive', 'written-before'])
    assert.equal(await volumeMarker(await sshPort(id), pass, vol), vol.marker)
    assert.equal((await volumeView(vol.id)).host, 'hv-a')
    await waitMigration(id, 'completed')
    for (let i = 0; i < 100 && volumeFiles(vol.id)['hv-b']!.length > 0; i++) await sleep(200)
    assert.deepEqual(volumeFiles(vol.id), { 'hv-a': [`v/${vol.id}.qcow2`], 'hv-b': [], 'hv-c': [] }, 'back on hv-a only')
  })

  test('a volume-backed server moves running: its root volume mirrored whole, the same boot, the file on its root disk there; a destination that cannot wait leaves it on its host', async () => {
    const imageRef = vm.baseImageId
    const pass = `P-${randomBytes(6).toString('hex')}`
    // Booted from a new volume made from the image: its root disk is the volume (no overlay).
    const res = await call('POST', '/servers', {
      server: {
        name: 'live-bfv',
        flavorRef: '1',
        adminPass: pass,
        networks: 'auto',
        host: 'hv-a',
        block_device_mapping_v2: [
          { boot_index: 0, uuid: imageRef, source_type: 'image', destination_type: 'volume', volume_size: 1, delete_on_termination: true },
        ],
      },
    })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    const id = res.body.server.id as string
    await settled(id, 'ACTIVE', BOOT_MS)
    const rootId = (await call('GET', `/servers/${id}/os-volume_attachments`)).body.volumeAttachments[0].volumeId as string
    const marker = `bfv-${randomBytes(6).toString('hex')}`
    const { out } = await sshOk(
      await sshPort(id),
      pass,
      `echo ${marker} > /root/marker && sync; setsid sleep 86400 </dev/null >/dev/null 2>&1 & echo $!`,
    )
    const pid = out.trim()
    const before = await guest(await sshPort(id), pass, pid)
    assert.equal(before.marker, marker)
    assert.equal(existsSync(path.join(dirs['hv-a'], 'qemu', 's', id, 'disk.qcow2')), false, 'no image overlay: the root is the volume')
    assert.deepEqual(volumeFiles(rootId), { 'hv-a': [`v/${rootId}.qcow2`], 'hv-b': [], 'hv-c': [] })

    // hv-c cannot listen at its migration address: the guest runs on where it was, nothing of it there.
    assert.equal((await liveMigrate(id, 'hv-c')).status, 202)
    await waitMigration(id, 'error')
    assert.equal((await settled(id, 'ACTIVE', MOVE_MS))['OS-EXT-SRV-ATTR:host'], 'hv-a')
    assert.equal((await guest(await sshPort(id), pass, pid)).bootId, before.bootId)
    assert.deepEqual(await volumeView(rootId), { status: 'in-use', host: 'hv-a' })
    assert.deepEqual(volumeFiles(rootId), { 'hv-a': [`v/${rootId}.qcow2`], 'hv-b': [], 'hv-c': [] })

    assert.equal((await liveMigrate(id, 'hv-b')).status, 202)
    assert.equal((await settled(id, 'ACTIVE', MOVE_MS))['OS-EXT-SRV-ATTR:host'], 'hv-b')
    const newPort = await sshPort(id)
    const afterMove = await guest(newPort, pass, pid)
    assert.deepEqual(
      [afterMove.bootId, afterMove.proc, afterMove.marker],
      [before.bootId, 'alive', marker],
      'the same boot, the file there',
    )
    const serial = await sshOk(
      newPort,
      pass,
      'cat /sys/block/vda/serial; echo; echo written-after > /root/after && sync && cat /root/after',
    )
    assert.equal(serial.out.trim(), `${rootId.slice(0, 20)}\nwritten-after`, 'the root disk is the volume; the guest writes there')
    assert.deepEqual(await volumeView(rootId), { status: 'in-use', host: 'hv-b' })
    await waitMigration(id, 'completed')
    const sourceDir = path.join(dirs['hv-a'], 'qemu', 's', id)
    for (let i = 0; i < 100 && (existsSync(sourceDir) || volumeFiles(rootId)['hv-a']!.length > 0); i++) await sleep(200)
    assert.deepEqual(volumeFiles(rootId), { 'hv-a': [], 'hv-b': [`v/${rootId}.qcow2`], 'hv-c': [] }, "the root volume's file on hv-b only")
    assert.deepEqual(qemuPids(sourceDir), [], 'the source QEMU is stopped')
    // A reboot on hv-b boots the volume with the kernel and initrd hv-b took in.
    assert.equal((await call('POST', `/servers/${id}/action`, { reboot: { type: 'HARD' } })).status, 202)
    await settled(id, 'ACTIVE', BOOT_MS)
    const rebooted = await guest(await sshPort(id), pass)
    assert.notEqual(rebooted.bootId, before.bootId)
    assert.equal(rebooted.marker, marker)
  })

  test('a destination that cannot wait for the guest: ACTIVE on its host, the same boot, its volume; migration error; nothing left there', async () => {
    const { id, pass, port, pid, volume } = await boot('live-fail', 'hv-a', { volume: true })
    const vol = volume!
    const before = await guest(port, pass, pid)
    const res = await liveMigrate(id, 'hv-c')
    assert.equal(res.status, 202, JSON.stringify(res.body))
    const m = await waitMigration(id, 'error')
    const s = await settled(id, 'ACTIVE', MOVE_MS)
    assert.equal(s['OS-EXT-SRV-ATTR:host'], 'hv-a')
    assert.equal(s['OS-EXT-STS:power_state'], 1)
    assert.equal(m.dest_compute, 'hv-c')
    assert.equal(m.dest_host, '192.0.2.1', 'the address the destination took the move on with')
    // The address each agent registered is its hypervisor's host_ip.
    const hypervisors = (await call('GET', '/os-hypervisors/detail', undefined, '2.53')).body.hypervisors as Record<string, any>[]
    assert.deepEqual(hypervisors.map((h) => [h.hypervisor_hostname, h.host_ip]).sort(), [
      ['hv-a', '127.0.0.1'],
      ['hv-b', '127.0.0.1'],
      ['hv-c', '192.0.2.1'],
    ])
    assert.match(String(s.fault?.message), /Live migration failed: the destination cannot wait for the guest at 192\.0\.2\.1/)
    const afterFail = await guest(await sshPort(id), pass, pid)
    assert.equal(afterFail.bootId, before.bootId)
    assert.equal(afterFail.proc, 'alive')
    assert.equal(afterFail.marker, 'written-before')
    const destDir = path.join(dirs['hv-c'], 'qemu', 's')
    assert.deepEqual(existsSync(destDir) ? readdirSync(destDir) : [], [], 'the destination dropped its VM dir')
    assert.deepEqual(qemuPids(path.join(dirs['hv-c'], 'qemu')), [], 'no QEMU left on the destination')
    // The volume it had made to receive goes too; the source's is the guest's still.
    assert.deepEqual(volumeFiles(vol.id), { 'hv-a': [`v/${vol.id}.qcow2`], 'hv-b': [], 'hv-c': [] })
    assert.deepEqual(await volumeView(vol.id), { status: 'in-use', host: 'hv-a' })
    assert.equal(await volumeMarker(await sshPort(id), pass, vol), vol.marker)
  })

  test("the destination's QEMU killed during the copy: ACTIVE on its host, the same boot, its volume there only; migration error", async () => {
    const { id, pass, port, pid, volume } = await boot('live-killed', 'hv-a', { volume: true })
    const vol = volume!
    const before = await guest(port, pass, pid)
    const destDir = path.join(dirs['hv-b'], 'qemu', 's', id)
    const res = await liveMigrate(id, 'hv-b')
    assert.equal(res.status, 202, JSON.stringify(res.body))
    // `running`: the source has begun to copy to the waiting QEMU. SIGKILL it then.
    let killed: number[] = []
    for (const t0 = Date.now(); killed.length === 0 && Date.now() - t0 < MOVE_MS; await sleep(20)) {
      const m = await migration(id)
      if (m?.status === 'error') break
      if (m?.status !== 'running') continue
      killed = qemuPids(destDir)
      for (const p of killed) process.kill(p, 'SIGKILL')
    }
    assert.ok(killed.length > 0, 'the destination had a QEMU waiting when the copy began')
    const m = await waitMigration(id, 'error')
    assert.equal(m.dest_compute, 'hv-b')
    const s = await settled(id, 'ACTIVE', MOVE_MS)
    assert.equal(s['OS-EXT-SRV-ATTR:host'], 'hv-a')
    assert.equal(s['OS-EXT-STS:power_state'], 1)
    assert.match(String(s.fault?.message), /Live migration failed/)
    console.log(`# destination killed during the copy: fault ${JSON.stringify(s.fault?.message)}`)
    const afterFail = await guest(await sshPort(id), pass, pid)
    assert.equal(afterFail.bootId, before.bootId)
    assert.ok(afterFail.uptime >= before.uptime)
    assert.equal(afterFail.proc, 'alive')
    // Its disk is its own again (the mirror gone): it writes.
    await sshOk(await sshPort(id), pass, 'echo still-writable > /root/marker && sync')
    assert.equal(existsSync(destDir), false, 'the destination dropped its VM dir')
    // Every volume file on the source, the guest reads and writes it there; nothing on the destination.
    assert.equal(await volumeMarker(await sshPort(id), pass, vol), vol.marker)
    assert.deepEqual(await volumeView(vol.id), { status: 'in-use', host: 'hv-a' })
    assert.deepEqual(volumeFiles(vol.id), { 'hv-a': [`v/${vol.id}.qcow2`], 'hv-b': [], 'hv-c': [] })
    const marker2 = `vol-${randomBytes(6).toString('hex')}`
    await sshOk(await sshPort(id), pass, `printf '%s' ${marker2} | dd of=${vol.dev} bs=512 conv=sync 2>/dev/null; sync`)
    // Tried again, it moves: nothing of the failed attempt is in the way.
    assert.equal((await liveMigrate(id, 'hv-b')).status, 202)
    assert.equal((await settled(id, 'ACTIVE', MOVE_MS))['OS-EXT-SRV-ATTR:host'], 'hv-b')
    const moved = await guest(await sshPort(id), pass, pid)
    assert.deepEqual([moved.bootId, moved.proc, moved.marker], [before.bootId, 'alive', 'still-writable'])
    assert.equal(await volumeMarker(await sshPort(id), pass, { ...vol, marker: marker2 }), marker2)
    assert.equal((await volumeView(vol.id)).host, 'hv-b')
  })

  test('a volume served from another host is attached there: handed over, the data written on the first host read on the second', async () => {
    const x = await boot('vol-first', 'hv-a')
    const y = await boot('vol-second', 'hv-b')
    const who = await fetch(`${skiff.urls.identity}/auth/tokens`, { headers: { 'x-auth-token': token, 'x-subject-token': token } })
    const project = ((await who.json()) as { token: { project: { id: string } } }).token.project.id
    const created = await fetch(`${skiff.urls.volume}/${project}/volumes`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ volume: { size: 1, name: 'travels' } }),
    })
    const createdBody = await created.text()
    assert.equal(created.status, 202, createdBody)
    const volumeId = (JSON.parse(createdBody) as { volume: { id: string } }).volume.id
    const waitVolume = async (status: string) => {
      for (const t0 = Date.now(); Date.now() - t0 < MOVE_MS; await sleep(500)) if ((await volumeView(volumeId)).status === status) return
      throw new Error(`volume ${volumeId}: ${JSON.stringify(await volumeView(volumeId))}, not ${status}`)
    }
    await waitVolume('available')
    const attachTo = async (server: string) => {
      const r = await call('POST', `/servers/${server}/os-volume_attachments`, { volumeAttachment: { volumeId } })
      assert.equal(r.status, 200, JSON.stringify(r.body))
      await waitVolume('in-use')
    }
    // Written on hv-a's server (the new volume is served from hv-a), then detached.
    const first = (await volumeView(volumeId)).host
    assert.equal(first, 'hv-a')
    await attachTo(x.id)
    const dev = await diskOf(x.port, x.pass, volumeId)
    const marker = `vol-${randomBytes(6).toString('hex')}`
    await sshOk(x.port, x.pass, `printf '%s' ${marker} | dd of=${dev} bs=512 conv=sync 2>/dev/null; sync`)
    assert.equal((await call('DELETE', `/servers/${x.id}/os-volume_attachments/${volumeId}`)).status, 202)
    await waitVolume('available')
    // Attached to hv-b's server: hv-a hands it over, hv-b takes it in and plugs it in.
    await attachTo(y.id)
    assert.equal((await volumeView(volumeId)).host, 'hv-b')
    const read = await volumeMarker(y.port, y.pass, { id: volumeId, dev: await diskOf(y.port, y.pass, volumeId), marker })
    assert.equal(read, marker)
    // The copy hv-a kept goes once the attach is recorded.
    for (let i = 0; i < 100 && volumeFiles(volumeId)['hv-a']!.length > 0; i++) await sleep(200)
    assert.deepEqual(volumeFiles(volumeId), { 'hv-a': [], 'hv-b': [`v/${volumeId}.qcow2`], 'hv-c': [] })
  })

  async function waitMigration(id: string, status: string): Promise<Record<string, any>> {
    let m: Record<string, any> | undefined
    for (const t0 = Date.now(); Date.now() - t0 < MOVE_MS; await sleep(500)) {
      m = await migration(id)
      if (m?.status === status) return m
      if (m && ['completed', 'error'].includes(m.status)) break
    }
    throw new Error(`migration of ${id}: ${JSON.stringify(m)} (wanted ${status})`)
  }
})
