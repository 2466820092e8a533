// Resize on real VMs (qemu driver), checked over SSH as a user would: a larger flavor shows in
// the guest (memory in /proc/meminfo, CPUs in nproc, the disk's size in /sys/block/vda/size:
// the qcow2 grown with qemu-img resize), and the file written before is still there; confirm
// keeps it; a second resize reverted brings the old figures back. One host, so Skiff runs with
// --allow-resize-to-same-host (Nova's option). Then a cold migration between two agents of this
// machine, each with its own data dir, on one PostgreSQL (skipped without one): the file written
// before is found on the other host, with an attached volume; and a volume-backed server, whose
// root volume moves with it.
// Skipped where QEMU and the guest packages are absent, except in CI (.ci/run installs them).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { guestSkipReason } from '../helpers/qemu.ts'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts'
import { startQemuSkiff, type QemuSkiff } from './helpers/qemu-skiff.ts'
import { openrcToken, type SkiffProcess } from './helpers/skiff-process.ts'
import { sshOk, type VmApi } from './helpers/vm.ts'

const skip = guestSkipReason()
const BOOT_MS = 300_000

describe('qemu driver: resize, confirm, revert, seen from inside the guest', { skip, timeout: 30 * 60_000 }, () => {
  let vm: QemuSkiff
  let qemuDir = ''
  let skiff: SkiffProcess
  let api: VmApi
  let adminToken = ''
  let imageRef = ''

  before(async () => {
    vm = await startQemuSkiff({ sshPorts: '23400-23499', extraArgs: ['--allow-resize-to-same-host'], startTimeoutMs: 240_000 })
    ;({ skiff, api, qemuDir, baseImageId: imageRef } = vm)
    adminToken = await openrcToken(skiff.urls.identity, skiff.openrc.admin)
    for (const flavor of [
      { name: 'r.small', id: 'r-small', ram: 512, vcpus: 1, disk: 1 },
      { name: 'r.big', id: 'r-big', ram: 1024, vcpus: 2, disk: 2 },
      { name: 'r.bigger', id: 'r-bigger', ram: 1280, vcpus: 2, disk: 3 },
    ]) {
      const res = await fetch(`${skiff.urls.compute}/flavors`, {
        method: 'POST',
        headers: { 'x-auth-token': adminToken, 'content-type': 'application/json' },
        body: JSON.stringify({ flavor }),
      })
      assert.equal(res.status, 200, await res.text())
    }
  })

  after(() => vm?.stop())

  const act = async (id: string, body: unknown, status = 202) => {
    const res = await api.compute('POST', `/servers/${id}/action`, body)
    assert.equal(res.status, status, JSON.stringify(res.body))
  }
  /** What the guest says of itself: MemTotal (kB), CPUs, the root disk's bytes, and the marker file. */
  const figures = async (port: number, pass: string) => {
    const { out } = await sshOk(
      port,
      pass,
      "awk '/MemTotal/ {print $2}' /proc/meminfo; nproc; echo $(( $(cat /sys/block/vda/size) * 512 )); cat /root/marker",
    )
    const [mem, cpus, disk, marker] = out.trim().split('\n')
    return { memKb: Number(mem), cpus: Number(cpus), diskBytes: Number(disk), marker }
  }

  test('grow to more memory, CPUs and disk; confirm; a revert of the next resize brings the figures back', async () => {
    const pass = `P-${randomBytes(6).toString('hex')}`
    const res = await api.compute('POST', '/servers', { server: { name: 'grow', imageRef, flavorRef: 'r-small', adminPass: pass } })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    const id = res.body.server.id as string
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    let port = (await api.access(id)).port
    await sshOk(port, pass, 'echo before-resize > /root/marker && sync')
    const small = await figures(port, pass)
    assert.equal(small.cpus, 1)
    assert.equal(small.marker, 'before-resize')

    await act(id, { resize: { flavorRef: 'r-big' } })
    await api.waitStatus(id, 'VERIFY_RESIZE', BOOT_MS)
    port = (await api.access(id)).port
    const big = await figures(port, pass)
    assert.equal(big.cpus, 2)
    assert.ok(big.memKb > small.memKb + 400 * 1024, `memory ${small.memKb} kB → ${big.memKb} kB`)
    assert.equal(big.diskBytes, 2 * 2 ** 30)
    assert.equal(big.marker, 'before-resize')
    await act(id, { confirmResize: null }, 204)
    await api.waitStatus(id, 'ACTIVE', 60_000)
    assert.equal((await figures(port, pass)).cpus, 2)

    await act(id, { resize: { flavorRef: 'r-bigger' } })
    await api.waitStatus(id, 'VERIFY_RESIZE', BOOT_MS)
    port = (await api.access(id)).port
    const bigger = await figures(port, pass)
    assert.equal(bigger.diskBytes, 3 * 2 ** 30)
    await sshOk(port, pass, 'echo written-while-resized > /root/marker && sync')
    await act(id, { revertResize: null })
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    port = (await api.access(id)).port
    const back = await figures(port, pass)
    // The old disk, as it was before the resize (what was written meanwhile went with the new one).
    assert.deepEqual(back, big)
    console.log(`# guest figures: ${JSON.stringify({ small, big, bigger, back })}`)
    const server = (await api.compute('GET', `/servers/${id}`)).body.server
    assert.equal(server.flavor.id, 'r-big')
  })

  test('a volume-backed server resized on its host: more CPUs and memory, the same root volume and file; a revert brings the flavor back', async () => {
    const pass = `P-${randomBytes(6).toString('hex')}`
    const res = await api.compute('POST', '/servers', {
      server: {
        name: 'bfv-grow',
        flavorRef: 'r-small',
        adminPass: pass,
        block_device_mapping_v2: [
          { boot_index: 0, uuid: imageRef, source_type: 'image', destination_type: 'volume', volume_size: 1, delete_on_termination: true },
        ],
      },
    })
    assert.equal(res.status, 202, JSON.stringify(res.body))
    const id = res.body.server.id as string
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    const rootId = (await api.compute('GET', `/servers/${id}/os-volume_attachments`)).body.volumeAttachments[0].volumeId as string
    const rootFile = path.join(qemuDir, 'v', `${rootId}.qcow2`)
    await sshOk((await api.access(id)).port, pass, 'echo bfv-before-resize > /root/marker && sync')
    /** CPUs, the root disk's serial (the volume's id, 20 characters kept) and the marker file. */
    const look = async () => {
      const { out } = await sshOk((await api.access(id)).port, pass, 'nproc; cat /sys/block/vda/serial; echo; cat /root/marker')
      return out.trim().split('\n')
    }
    assert.deepEqual(await look(), ['1', rootId.slice(0, 20), 'bfv-before-resize'])
    await act(id, { resize: { flavorRef: 'r-big' } })
    await api.waitStatus(id, 'VERIFY_RESIZE', BOOT_MS)
    assert.deepEqual(await look(), ['2', rootId.slice(0, 20), 'bfv-before-resize'])
    assert.equal(existsSync(path.join(qemuDir, 's', id, 'disk.qcow2')), false, 'no overlay: the root is the volume')
    await act(id, { confirmResize: null }, 204)
    await api.waitStatus(id, 'ACTIVE', 60_000)
    await act(id, { resize: { flavorRef: 'r-bigger' } })
    await api.waitStatus(id, 'VERIFY_RESIZE', BOOT_MS)
    await act(id, { revertResize: null })
    await api.waitStatus(id, 'ACTIVE', BOOT_MS)
    assert.deepEqual(await look(), ['2', rootId.slice(0, 20), 'bfv-before-resize'])
    assert.equal((await api.compute('GET', `/servers/${id}`)).body.server.flavor.id, 'r-big')
    assert.equal(existsSync(rootFile), true)
  })
})

describe(
  'qemu driver: cold migration between two agents of this machine',
  {
    skip: skip || (testPostgresUrl() ? false : 'needs PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL)'),
    timeout: 30 * 60_000,
  },
  () => {
    const dirA = mkdtempSync(path.join(tmpdir(), 'skiff-e2e-mig-a-'))
    const dirB = mkdtempSync(path.join(tmpdir(), 'skiff-e2e-mig-b-'))
    let database: TestDatabase
    let vm: QemuSkiff
    let skiff: SkiffProcess
    let agentB: AgentProcess
    let api: VmApi
    let adminToken = ''

    before(async () => {
      database = await freshDatabase('postgres')
      vm = await startQemuSkiff({
        sshPorts: '23500-23549',
        extraArgs: ['--database-url', database.url, '--agent-host', 'hv-a'],
        startTimeoutMs: 240_000,
        dataDir: dirA,
      })
      ;({ skiff, api } = vm)
      agentB = await startAgentProcess({
        host: 'hv-b',
        databaseUrl: database.url,
        dataDir: dirB,
        startTimeoutMs: 240_000,
        extraArgs: ['--driver', 'qemu', '--secret-key-file', path.join(dirA, 'secret.key'), '--qemu-ssh-ports', '23550-23599'],
      })
      adminToken = await openrcToken(skiff.urls.identity, skiff.openrc.admin)
    })

    after(async () => {
      await vm?.stop({ qemuDirs: [path.join(dirB, 'qemu')], agents: [agentB] })
      await database?.drop()
      rmSync(dirA, { recursive: true, force: true })
      rmSync(dirB, { recursive: true, force: true })
    })

    test("migrate: the disk and the attached volume move to the other agent; the file and the volume's marker are there; confirm removes the source", async () => {
      const imageRef = vm.baseImageId
      const pass = `P-${randomBytes(6).toString('hex')}`
      // A blank volume made at create: on the server's host, plugged in after the first boot.
      const res = await api.compute('POST', '/servers', {
        server: {
          name: 'mover',
          imageRef,
          flavorRef: '1',
          adminPass: pass,
          block_device_mapping_v2: [
            { boot_index: 0, uuid: imageRef, source_type: 'image', destination_type: 'local' },
            { source_type: 'blank', destination_type: 'volume', volume_size: 1, delete_on_termination: true },
          ],
        },
      })
      assert.equal(res.status, 202, JSON.stringify(res.body))
      const id = res.body.server.id as string
      await api.waitStatus(id, 'ACTIVE', BOOT_MS)
      const admin = async (url: string) => {
        const r = await fetch(url, { headers: { 'x-auth-token': adminToken } })
        return (await r.json()) as Record<string, any>
      }
      const hostOf = async () => (await admin(`${skiff.urls.compute}/servers/${id}`)).server['OS-EXT-SRV-ATTR:host'] as string
      const attachments = (await api.compute('GET', `/servers/${id}/os-volume_attachments`)).body.volumeAttachments
      assert.equal(attachments.length, 1, JSON.stringify(attachments))
      const volumeId = attachments[0].volumeId as string
      // An admin sees another project's volume through its own project's URL (with the host attribute).
      const who = await fetch(`${skiff.urls.identity}/auth/tokens`, {
        headers: { 'x-auth-token': adminToken, 'x-subject-token': adminToken },
      })
      const project = ((await who.json()) as { token: { project: { id: string } } }).token.project.id
      const volume = async () => (await admin(`${skiff.urls.volume}/${project}/volumes/${volumeId}`)).volume as Record<string, string>
      const volumeHost = async () => String((await volume())['os-vol-host-attr:host']).split('@')[0]
      const source = await hostOf()
      assert.equal(await volumeHost(), source)
      const dataDir = (host: string) => path.join(host === 'hv-a' ? dirA : dirB, 'qemu')
      const volumeFile = (host: string) => path.join(dataDir(host), 'v', `${volumeId}.qcow2`)
      assert.equal(existsSync(volumeFile(source)), true)
      let port = (await api.access(id)).port
      // The volume's disk: the one whose serial is the volume id (virtio-blk keeps 20 characters).
      const findDisk = `for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "${volumeId.slice(0, 20)}" ] && echo /dev/\${d##*/}; done; true`
      const deadline = Date.now() + 120_000
      let dev = (await sshOk(port, pass, findDisk)).out.trim()
      while (!dev) {
        if (Date.now() > deadline) throw new Error('the volume never showed in the guest')
        await new Promise((r) => setTimeout(r, 1000))
        dev = (await sshOk(port, pass, findDisk)).out.trim()
      }
      const marker = `vol-${randomBytes(6).toString('hex')}`
      await sshOk(
        port,
        pass,
        `echo written-on-the-source > /root/marker && printf '%s' ${marker} | dd of=${dev} bs=512 conv=sync 2>/dev/null; sync`,
      )
      const migrate = await fetch(`${skiff.urls.compute}/servers/${id}/action`, {
        method: 'POST',
        headers: { 'x-auth-token': adminToken, 'content-type': 'application/json' },
        body: JSON.stringify({ migrate: null }),
      })
      assert.equal(migrate.status, 202, await migrate.text())
      await api.waitStatus(id, 'VERIFY_RESIZE', BOOT_MS)
      const dest = await hostOf()
      assert.notEqual(dest, source)
      assert.equal(await volumeHost(), dest, "the volume's host is the server's new one")
      port = (await api.access(id)).port
      const { out } = await sshOk(port, pass, `cat /root/marker; ${findDisk}`)
      assert.deepEqual(out.trim().split('\n'), ['written-on-the-source', dev], 'the same file; the volume at the same device')
      const read = await sshOk(port, pass, `dd if=${dev} bs=512 count=1 2>/dev/null | head -c ${marker.length}`)
      assert.equal(read.out, marker)
      assert.equal((await volume()).status, 'in-use')
      const sourceDir = path.join(dataDir(source), 's', id)
      assert.equal(existsSync(sourceDir), true, 'the source keeps its VM until confirm')
      assert.equal(existsSync(volumeFile(dest)), true, "the volume's file is on the destination")
      assert.equal(existsSync(volumeFile(source)), false, 'and no longer served from the source')
      const confirm = await api.compute('POST', `/servers/${id}/action`, { confirmResize: null })
      assert.equal(confirm.status, 204, JSON.stringify(confirm.body))
      await api.waitStatus(id, 'ACTIVE', 60_000)
      for (let i = 0; i < 100 && existsSync(sourceDir); i++) await new Promise((r) => setTimeout(r, 200))
      assert.equal(existsSync(sourceDir), false, 'confirm removed the source VM dir (and the copy of the volume it kept)')
      const leftovers = (host: string) =>
        readdirSync(dataDir(host), { recursive: true })
          .map(String)
          .filter((f) => f.includes(volumeId))
      assert.deepEqual(leftovers(source), [], "nothing of the volume on the source's data dir")
      assert.deepEqual(leftovers(dest), [`v/${volumeId}.qcow2`])

      // Migrated back, then reverted: the volume is served from where it was, as it was before.
      const again = await fetch(`${skiff.urls.compute}/servers/${id}/action`, {
        method: 'POST',
        headers: { 'x-auth-token': adminToken, 'content-type': 'application/json' },
        body: JSON.stringify({ migrate: null }),
      })
      assert.equal(again.status, 202, await again.text())
      await api.waitStatus(id, 'VERIFY_RESIZE', BOOT_MS)
      assert.equal(await hostOf(), source)
      assert.equal(await volumeHost(), source)
      assert.deepEqual(leftovers(dest), [`s/${id}/moved-volumes/${volumeId}.qcow2`], 'kept aside on the host it left')
      const revert = await api.compute('POST', `/servers/${id}/action`, { revertResize: null })
      assert.equal(revert.status, 202, JSON.stringify(revert.body))
      await api.waitStatus(id, 'ACTIVE', BOOT_MS)
      assert.equal(await hostOf(), dest)
      assert.equal(await volumeHost(), dest, 'back with the server')
      port = (await api.access(id)).port
      assert.equal((await sshOk(port, pass, findDisk)).out.trim(), dev)
      assert.equal((await sshOk(port, pass, `dd if=${dev} bs=512 count=1 2>/dev/null | head -c ${marker.length}`)).out, marker)
      assert.deepEqual(leftovers(source), [], 'the copy the revert dropped')
      assert.deepEqual(leftovers(dest), [`v/${volumeId}.qcow2`])
    })

    test('migrate a volume-backed server: its root volume moves; the file written on its root disk is there; confirm, then a revert', async () => {
      const imageRef = vm.baseImageId
      const pass = `P-${randomBytes(6).toString('hex')}`
      // Booted from a new volume made from the image: its root disk is the volume (no overlay).
      const res = await api.compute('POST', '/servers', {
        server: {
          name: 'bfv-mover',
          flavorRef: '1',
          adminPass: pass,
          block_device_mapping_v2: [
            {
              boot_index: 0,
              uuid: imageRef,
              source_type: 'image',
              destination_type: 'volume',
              volume_size: 1,
              delete_on_termination: true,
            },
          ],
        },
      })
      assert.equal(res.status, 202, JSON.stringify(res.body))
      const id = res.body.server.id as string
      await api.waitStatus(id, 'ACTIVE', BOOT_MS)
      const admin = async (url: string, init: RequestInit = {}) => {
        const r = await fetch(url, { ...init, headers: { 'x-auth-token': adminToken, 'content-type': 'application/json' } })
        return { status: r.status, body: (await r.text().then((t) => (t ? JSON.parse(t) : {}))) as Record<string, any> }
      }
      const hostOf = async () => (await admin(`${skiff.urls.compute}/servers/${id}`)).body.server['OS-EXT-SRV-ATTR:host'] as string
      const attachments = (await api.compute('GET', `/servers/${id}/os-volume_attachments`)).body.volumeAttachments
      assert.equal(attachments.length, 1, JSON.stringify(attachments))
      const rootId = attachments[0].volumeId as string
      const who = await fetch(`${skiff.urls.identity}/auth/tokens`, {
        headers: { 'x-auth-token': adminToken, 'x-subject-token': adminToken },
      })
      const project = ((await who.json()) as { token: { project: { id: string } } }).token.project.id
      const volume = async () => (await admin(`${skiff.urls.volume}/${project}/volumes/${rootId}`)).body.volume as Record<string, string>
      const volumeHost = async () => String((await volume())['os-vol-host-attr:host']).split('@')[0]
      const dataDir = (host: string) => path.join(host === 'hv-a' ? dirA : dirB, 'qemu')
      const leftovers = (host: string) =>
        readdirSync(dataDir(host), { recursive: true })
          .map(String)
          .filter((f) => f.includes(rootId))
      const migrate = async () => {
        const r = await admin(`${skiff.urls.compute}/servers/${id}/action`, { method: 'POST', body: JSON.stringify({ migrate: null }) })
        assert.equal(r.status, 202, JSON.stringify(r.body))
        await api.waitStatus(id, 'VERIFY_RESIZE', BOOT_MS)
      }
      /** The root disk's serial (the volume's id, virtio-blk keeps 20 characters) and the marker file on it. */
      const look = async () =>
        (await sshOk((await api.access(id)).port, pass, 'cat /sys/block/vda/serial; echo; cat /root/marker')).out.trim()
      const source = await hostOf()
      assert.equal(await volumeHost(), source)
      assert.deepEqual(leftovers(source), [`v/${rootId}.qcow2`])
      assert.equal(existsSync(path.join(dataDir(source), 's', id, 'disk.qcow2')), false, 'no image overlay: the root is the volume')
      const marker = `bfv-${randomBytes(6).toString('hex')}`
      await sshOk((await api.access(id)).port, pass, `echo ${marker} > /root/marker && sync`)

      await migrate()
      const dest = await hostOf()
      assert.notEqual(dest, source)
      assert.equal(await volumeHost(), dest, "the root volume's host is the server's new one")
      assert.equal(await look(), `${rootId.slice(0, 20)}\n${marker}`, 'the same root disk, the file written on it there')
      assert.equal((await volume()).status, 'in-use')
      assert.deepEqual(leftovers(dest), [`v/${rootId}.qcow2`], "the root volume's file is on the destination")
      assert.deepEqual(leftovers(source), [`s/${id}/moved-volumes/${rootId}.qcow2`], 'kept aside on the source until confirm, not served')
      const confirm = await api.compute('POST', `/servers/${id}/action`, { confirmResize: null })
      assert.equal(confirm.status, 204, JSON.stringify(confirm.body))
      await api.waitStatus(id, 'ACTIVE', 60_000)
      const sourceDir = path.join(dataDir(source), 's', id)
      for (let i = 0; i < 100 && existsSync(sourceDir); i++) await new Promise((r) => setTimeout(r, 200))
      assert.deepEqual(leftovers(source), [], "nothing of the root volume on the source's data dir")
      assert.deepEqual(leftovers(dest), [`v/${rootId}.qcow2`])

      // Migrated back, then reverted: served from where it was, the root disk as it was.
      await migrate()
      assert.equal(await hostOf(), source)
      assert.equal(await volumeHost(), source)
      const revert = await api.compute('POST', `/servers/${id}/action`, { revertResize: null })
      assert.equal(revert.status, 202, JSON.stringify(revert.body))
      await api.waitStatus(id, 'ACTIVE', BOOT_MS)
      assert.equal(await hostOf(), dest)
      assert.equal(await volumeHost(), dest, 'back with the server')
      assert.equal(await look(), `${rootId.slice(0, 20)}\n${marker}`)
      assert.deepEqual(leftovers(source), [], 'the copy the revert dropped')
      assert.deepEqual(leftovers(dest), [`v/${rootId}.qcow2`])
    })
  },
)
