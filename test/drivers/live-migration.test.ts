// Live migration's QMP choreography (src/drivers/qemu/live-migration.ts) between two real QEMUs
// with no machine (`-machine none`, a disk each, no guest): the source's overlay arrives whole on
// the destination's disk over NBD and the destination runs (a paused guest stays paused); a second
// attempt clears what a first one cut short left; a destination gone during the copy, or a copy
// past its deadline, is cancelled and the source runs on, its disk its own (no job, no migration);
// so is a copy an admin aborts (held slow by a low bandwidth), and a force-complete pauses the
// guest on the source until it has arrived, then the destination runs it. With attached volumes
// (block nodes of their own): each mirrored whole to its own export; a volume the destination
// does not serve, or a destination gone, leaves the source running with every volume its own and no job.
import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import { CopyCancelled, ephemeralPort, receive, resumeArrived, send } from '../../src/drivers/qemu/live-migration.ts'
import { volumeBlockdev, volumeNames } from '../../src/drivers/qemu/qemu-args.ts'
import { QmpClient } from '../../src/drivers/qemu/qmp.ts'
import type { LiveMigrationProgress } from '../../src/drivers/driver.ts'
import { qemuSkipReason } from '../helpers/qemu.ts'

/** qemu-img and qemu-io make and fill the disks (Debian's qemu-utils). */
function qemuUtilsMissing(): string | false {
  try {
    execFileSync('qemu-io', ['--version'], { stdio: 'ignore' })
    return false
  } catch {
    return 'qemu-io is not installed (apt-get install --no-install-recommends qemu-utils)'
  }
}
const skip = qemuSkipReason() || qemuUtilsMissing()
const SIZE = 64 * 2 ** 20
const VOLUMES = ['1b5e55ed-0000-4000-8000-000000000001', '2b5e55ed-0000-4000-8000-000000000002']

describe('live migration in QMP between two QEMUs (-machine none)', { skip }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'skiff-livemig-'))
  const qemus: ChildProcess[] = []
  after(() => {
    for (const q of qemus) if (q.exitCode === null) q.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  const img = (...args: string[]) => execFileSync('qemu-img', args, { stdio: 'pipe' }).toString()
  /** An overlay of one base image, as both hosts have (the same image, their own copies). */
  const disk = (name: string) => {
    const base = path.join(dir, `${name}-base.qcow2`)
    img('create', '-q', '-f', 'qcow2', base, String(SIZE))
    execFileSync('qemu-io', ['-c', 'write -P 0x11 0 1M', base], { stdio: 'pipe' })
    const file = path.join(dir, `${name}.qcow2`)
    img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, file, String(SIZE))
    return file
  }
  const start = async (name: string, file: string, incoming: boolean, volumes: string[] = []): Promise<QmpClient> => {
    const sock = path.join(dir, `${name}.qmp`)
    const args = ['-machine', 'none', '-m', '64', '-nodefaults', '-no-user-config', '-display', 'none']
    args.push('-drive', `file=${file},if=none,id=vda,format=qcow2,auto-read-only=off`, '-qmp', `unix:${sock},server=on,wait=off`)
    // Attached volumes as the driver has them: a -blockdev node each, named for the volume.
    for (const [i, v] of volumes.entries()) args.push('-blockdev', JSON.stringify(volumeBlockdev(volumeNames(VOLUMES[i]!).node, v)))
    if (incoming) args.push('-incoming', 'defer', '-S')
    qemus.push(spawn('qemu-system-x86_64', args, { stdio: 'ignore' }))
    // The socket file appears when QEMU binds it, a moment before it listens: refused until then.
    for (const deadline = Date.now() + 15_000; ; await sleep(20)) {
      try {
        if (existsSync(sock)) return await QmpClient.connect(sock)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw err
      }
      if (Date.now() > deadline) throw new Error(`QEMU ${name} did not listen on its QMP socket`)
    }
  }
  const pair = async (name: string) => {
    const sourceFile = disk(`${name}-src`)
    // What the guest wrote on its overlay: over the image, and where the image has nothing.
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 512k 1M', '-c', 'write -P 0x77 40M 3M', sourceFile], { stdio: 'pipe' })
    const destFile = disk(`${name}-dst`)
    const source = await start(`${name}-src`, sourceFile, false)
    const dest = await start(`${name}-dst`, destFile, true)
    const ports = { nbd: await ephemeralPort('127.0.0.1'), migration: await ephemeralPort('127.0.0.1') }
    await receive(dest, '127.0.0.1', ports)
    return { source, dest, ports, sourceFile, destFile }
  }
  /** A server with two volumes: written on the source (standalone files), blank ones of the same sizes on the destination. */
  const pairWithVolumes = async (name: string) => {
    const sourceFile = disk(`${name}-src`)
    const destFile = disk(`${name}-dst`)
    const vol = (side: string, i: number) => {
      const file = path.join(dir, `${name}-${side}-vol${i}.qcow2`)
      img('create', '-q', '-f', 'qcow2', file, String(SIZE))
      return file
    }
    const sourceVolumes = [vol('src', 0), vol('src', 1)]
    execFileSync('qemu-io', ['-c', 'write -P 0x21 0 2M', '-c', 'write -P 0x22 30M 1M', sourceVolumes[0]!], { stdio: 'pipe' })
    execFileSync('qemu-io', ['-c', 'write -P 0x33 5M 4M', sourceVolumes[1]!], { stdio: 'pipe' })
    const destVolumes = [vol('dst', 0), vol('dst', 1)]
    const source = await start(`${name}-src`, sourceFile, false, sourceVolumes)
    const dest = await start(`${name}-dst`, destFile, true, destVolumes)
    const ports = { nbd: await ephemeralPort('127.0.0.1'), migration: await ephemeralPort('127.0.0.1') }
    const nodes = VOLUMES.map((v) => volumeNames(v).node)
    return { source, dest, ports, sourceFile, destFile, sourceVolumes, destVolumes, nodes }
  }
  const quit = async (q: QmpClient) => {
    await q.execute('quit').catch(() => {})
    await q.waitClosed(10_000)
  }

  test('the overlay arrives whole; the destination runs, the source stays stopped', async () => {
    const { source, dest, ports, sourceFile, destFile } = await pair('ok')
    const { running } = await send(source, {
      address: '127.0.0.1',
      nbdPort: ports.nbd,
      migrationPort: ports.migration,
      deadline: Date.now() + 60_000,
    })
    assert.equal(running, true)
    assert.equal((await source.execute<{ status: string }>('query-status')).status, 'postmigrate')
    await resumeArrived(dest, true)
    assert.equal((await dest.execute<{ status: string }>('query-status')).status, 'running')
    await quit(source)
    await quit(dest)
    // The same disk as the guest sees it (image + overlay) on both sides.
    assert.match(img('compare', '-f', 'qcow2', '-F', 'qcow2', sourceFile, destFile), /Images are identical/)
  })

  test('a second attempt after an agent died mid-copy: what the first left cleared (its mirror, the guest stopped), then it moves', async () => {
    const { source, dest, ports, sourceFile, destFile } = await pair('again')
    // What the first attempt left: its mirror running, the guest stopped.
    await source.execute('drive-mirror', {
      'job-id': 'live-migration-vda',
      device: 'vda',
      target: `nbd://127.0.0.1:${ports.nbd}/vda`,
      format: 'raw',
      sync: 'top',
      mode: 'existing',
    })
    await source.execute('stop')
    const { running } = await send(source, {
      address: '127.0.0.1',
      nbdPort: ports.nbd,
      migrationPort: ports.migration,
      deadline: Date.now() + 60_000,
      wasRunning: true,
    })
    assert.equal(running, true)
    await resumeArrived(dest, true)
    assert.equal((await dest.execute<{ status: string }>('query-status')).status, 'running')
    await quit(source)
    await quit(dest)
    assert.match(img('compare', '-f', 'qcow2', '-F', 'qcow2', sourceFile, destFile), /Images are identical/)
  })

  test('a paused guest arrives paused', async () => {
    const { source, dest, ports } = await pair('paused')
    await source.execute('stop')
    const { running } = await send(source, {
      address: '127.0.0.1',
      nbdPort: ports.nbd,
      migrationPort: ports.migration,
      deadline: Date.now() + 60_000,
    })
    assert.equal(running, false)
    await resumeArrived(dest, running)
    assert.equal((await dest.execute<{ status: string }>('query-status')).status, 'paused')
    await quit(source)
    await quit(dest)
  })

  test('the destination gone once the disk is in sync: the memory copy fails, the source runs on, no job', async () => {
    const { source, ports } = await pair('gone')
    const destProcess = qemus.at(-1)!
    await assert.rejects(
      send(source, {
        address: '127.0.0.1',
        nbdPort: ports.nbd,
        migrationPort: ports.migration,
        deadline: Date.now() + 60_000,
        onProgress: (what) => {
          if (what === 'disk in sync') destProcess.kill('SIGKILL')
        },
      }),
      /the memory copy failed/,
    )
    assert.equal((await source.execute<{ status: string }>('query-status')).status, 'running')
    assert.deepEqual(await source.execute('query-block-jobs'), [])
    await quit(source)
  })

  test("an admin's abort during the memory copy (held slow): cancelled, the source runs on with its disk, no job", async () => {
    const { source, dest, ports } = await pair('abort')
    let asked: 'abort' | null = null
    let polls = 0
    await assert.rejects(
      send(source, {
        address: '127.0.0.1',
        nbdPort: ports.nbd,
        migrationPort: ports.migration,
        deadline: Date.now() + 120_000,
        // 32 KiB/s: the guest's 64 MiB (zero pages, a few bytes each) take seconds to copy.
        bandwidth: 32 * 1024,
        onProgress: (what) => {
          if (what === 'disk in sync') asked = 'abort'
        },
        requested: async () => {
          polls++
          return asked
        },
      }),
      CopyCancelled,
    )
    assert.ok(polls > 0)
    assert.equal((await source.execute<{ status: string }>('query-status')).status, 'running')
    assert.deepEqual(await source.execute('query-block-jobs'), [])
    assert.equal((await source.execute<{ status?: string }>('query-migrate')).status, 'cancelled')
    // The destination's incoming migration failed with the stream: its QEMU exits, nothing arrived.
    await dest.waitClosed(10_000)
    assert.equal(dest.closed, true)
    await quit(source)
  })

  test('force-complete during the memory copy: the guest paused here until it has arrived; the destination runs it', async () => {
    const { source, dest, ports, sourceFile, destFile } = await pair('force')
    let asked: 'force-complete' | null = null
    const said: string[] = []
    let statusWhenPaused = ''
    const stats: LiveMigrationProgress[] = []
    const { running } = await send(source, {
      address: '127.0.0.1',
      nbdPort: ports.nbd,
      migrationPort: ports.migration,
      deadline: Date.now() + 120_000,
      bandwidth: 64 * 1024,
      onStats: (p) => stats.push(p),
      onProgress: (what) => {
        said.push(what)
        if (what === 'disk in sync') asked = 'force-complete'
      },
      requested: async () => {
        if (asked && !statusWhenPaused && said.some((w) => w.startsWith('guest paused')))
          statusWhenPaused = (await source.execute<{ status: string }>('query-status')).status
        return asked
      },
    })
    assert.deepEqual(said, ['disk in sync', 'guest paused to complete the copy (force complete)', 'memory and devices sent'])
    assert.equal(statusWhenPaused, 'paused', 'the guest stopped on the source while the copy went on')
    assert.equal(running, true, 'it ran before: the destination runs it')
    // How far the copy was, as Nova's libvirt driver saves it: the disk's top layer mirrored (the
    // 4 MiB the guest wrote on its overlay: the image is on both sides), the memory being sent.
    const last = stats.at(-1)!
    assert.equal(last.disk_total, 4 * 2 ** 20)
    assert.equal(last.disk_remaining, 0)
    assert.ok(last.memory_total >= 64 * 2 ** 20 && last.memory_processed > 0, JSON.stringify(last))
    await resumeArrived(dest, running)
    assert.equal((await dest.execute<{ status: string }>('query-status')).status, 'running')
    await quit(source)
    await quit(dest)
    assert.match(img('compare', '-f', 'qcow2', '-F', 'qcow2', sourceFile, destFile), /Images are identical/)
  })

  test('past its deadline the copy is cancelled: the source runs on with its disk, no job, no migration', async () => {
    const { source, dest, ports } = await pair('late')
    await assert.rejects(
      send(source, { address: '127.0.0.1', nbdPort: ports.nbd, migrationPort: ports.migration, deadline: Date.now() - 1 }),
      /did not finish in time/,
    )
    assert.equal((await source.execute<{ status: string }>('query-status')).status, 'running')
    assert.deepEqual(await source.execute('query-block-jobs'), [])
    assert.notEqual((await source.execute<{ status?: string }>('query-migrate')).status, 'completed')
    await assert.rejects(resumeArrived(dest, true), /has not arrived/)
    await quit(source)
    await quit(dest)
  })

  test('with volumes: one export and one mirror each, every volume whole on the destination', async () => {
    const { source, dest, ports, sourceFile, destFile, sourceVolumes, destVolumes, nodes } = await pairWithVolumes('vols')
    await receive(dest, '127.0.0.1', ports, nodes)
    const progress: string[] = []
    const { running } = await send(source, {
      address: '127.0.0.1',
      nbdPort: ports.nbd,
      migrationPort: ports.migration,
      deadline: Date.now() + 60_000,
      volumeNodes: nodes,
      onProgress: (what) => progress.push(what),
    })
    assert.equal(running, true)
    assert.deepEqual(progress, ['disk and 2 volume(s) in sync', 'memory and devices sent'])
    await resumeArrived(dest, true)
    await quit(source)
    await quit(dest)
    assert.match(img('compare', '-f', 'qcow2', '-F', 'qcow2', sourceFile, destFile), /Images are identical/)
    for (const [i, file] of sourceVolumes.entries())
      assert.match(img('compare', '-f', 'qcow2', '-F', 'qcow2', file, destVolumes[i]!), /Images are identical/)
  })

  test('with volumes, a volume the destination does not serve: the mirrors started are cancelled, the source runs on', async () => {
    const { source, dest, ports, sourceVolumes, nodes } = await pairWithVolumes('novol')
    // The destination exports the disk and the first volume only.
    await receive(dest, '127.0.0.1', ports, nodes.slice(0, 1))
    await assert.rejects(
      send(source, {
        address: '127.0.0.1',
        nbdPort: ports.nbd,
        migrationPort: ports.migration,
        deadline: Date.now() + 60_000,
        volumeNodes: nodes,
      }),
    )
    assert.equal((await source.execute<{ status: string }>('query-status')).status, 'running')
    assert.deepEqual(await source.execute('query-block-jobs'), [])
    assert.notEqual((await source.execute<{ status?: string }>('query-migrate')).status, 'completed')
    await quit(source)
    await quit(dest)
    execFileSync('qemu-io', ['-r', '-c', 'read -P 0x33 5M 4M', sourceVolumes[1]!], { stdio: 'pipe' })
  })

  test('with volumes, the destination gone once all are in sync: the source runs on, its volumes its own, no job', async () => {
    const { source, dest, ports, sourceVolumes, nodes } = await pairWithVolumes('volgone')
    await receive(dest, '127.0.0.1', ports, nodes)
    const destProcess = qemus.at(-1)!
    await assert.rejects(
      send(source, {
        address: '127.0.0.1',
        nbdPort: ports.nbd,
        migrationPort: ports.migration,
        deadline: Date.now() + 60_000,
        volumeNodes: nodes,
        onProgress: (what) => {
          if (what.endsWith('in sync')) destProcess.kill('SIGKILL')
        },
      }),
      /the memory copy failed/,
    )
    assert.equal((await source.execute<{ status: string }>('query-status')).status, 'running')
    assert.deepEqual(await source.execute('query-block-jobs'), [])
    // The guest still writes its volumes here.
    await source.execute('human-monitor-command', { 'command-line': `qemu-io ${nodes[0]} "write -P 0x44 0 64k"` })
    await quit(source)
    execFileSync('qemu-io', ['-r', '-c', 'read -P 0x44 0 64k', '-c', 'read -P 0x22 30M 1M', sourceVolumes[0]!], { stdio: 'pipe' })
  })
})
