// The qemu driver's overhead over QEMU driven by hand. Three phases, each timed from the
// client's request until an SSH login with the right password succeeds (the user's view:
// "when can I log in?"):
//   create   → SSH with the create password
//   rescue   → SSH with the rescue password (server VM shut down by ACPI, then a rescue VM on a
//              fresh overlay of the image, the server's disk second, a new config drive)
//   unrescue → SSH with the original password (rescue VM shut down, the server's disk boots)
// Rescue is measured twice on the driver side: restored from the saved warm rescue system
// (instant rescue, the default) and booted (`--no-qemu-warm-rescue`), by two `skiff serve`
// processes; the warm one gets a rescue first, unmeasured, after which it saves its warm state.
// Driver side: a real `skiff serve --driver qemu` in a child process, driven through the Nova
// API (the port from GET /servers/{id}/access, which answers once the server is ACTIVE).
// Bare side, in this process: qemu-img overlays, the project's config drive and QEMU argument
// vector (same accelerator, vcpus and memory as flavor 1), ACPI powerdown over QMP, waiting for
// the process to exit. Runs alternate (driver, bare, driver, bare, ...) so machine noise hits
// both alike; the table shows medians, driver/bare, and min–max. Aim: the driver adds < 10 %.
//
//   npm run bench:qemu -- --runs 3
import { execFile } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { existsSync, readdirSync } from 'node:fs'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { loadavg } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { probeAccel } from '../src/drivers/qemu/accel.ts'
import { writeConfigDrive } from '../src/drivers/qemu/config-drive.ts'
import { guestFiles } from '../src/drivers/qemu/guest-image.ts'
import { buildQemuArgs, vmFiles, type Accel, type DiskArg } from '../src/drivers/qemu/qemu-args.ts'
import { isAlive } from '../src/drivers/qemu/qemu-driver.ts'
import { portFree, sshBanner } from '../src/drivers/qemu/ssh-probe.ts'
import { QmpClient } from '../src/drivers/qemu/qmp.ts'
import { startSkiffProcess, type SkiffProcess } from '../test/e2e/helpers/skiff-process.ts'
import { killQemus, ssh, vmApi, type VmApi } from '../test/e2e/helpers/vm.ts'
import { median, option, runMain, table, tempDir } from './harness.ts'

const run = promisify(execFile)
/** The cold (booting) skiff's ports, the warm one's, and the bare VMs' (the top). */
const PORTS = '24000-24048'
const WARM_PORTS = '24049-24098'
/** The bare VMs' SSH port: the top of the range (the driver allocates from the bottom). */
const BARE_PORT = 24099
const PHASES = ['create', 'rescue', 'unrescue'] as const
type Phase = (typeof PHASES)[number]
const PHASE_TIMEOUT_MS = 240_000
const POLL_MS = 200

/**
 * One phase of one run, ms from the request: SSH login, QEMU started, (driver) the API status;
 * and the guest's own uptime when it printed GUEST-READY (its boot, whoever started it).
 */
interface Timing {
  login: number
  qemuStart: number
  status?: number
  uptime: number
}
type RunTimes = Record<Phase, Timing>

const password = (tag: string) => `${tag}-${randomBytes(6).toString('hex')}`

/** `p`, or null after `ms` (an SSH handshake that stalls must not stall the poll). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<null>((resolve) => {
        timer = setTimeout(resolve, ms, null)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Poll every 200 ms until root logs in with `pw`; returns when (Date.now()). `port` may not be
 * known yet (undefined). An attempt that stalls (begun against a system going down: the old
 * one's SSH server killed mid-handshake) does not hold up the next: up to four run at once, each
 * given 10 s, and the first login that works ends the poll.
 */
async function loginAt(port: () => Promise<number | undefined>, pw: string, what: string): Promise<number> {
  const deadline = Date.now() + PHASE_TIMEOUT_MS
  let loggedIn: number | undefined
  let running = 0
  for (;;) {
    const p = await port()
    if (p !== undefined && running < 4 && (await sshBanner(p))) {
      running++
      void within(
        ssh(p, pw, 'true').catch(() => null),
        10_000,
      ).then((r) => {
        running--
        if (r?.ok) loggedIn ??= Date.now()
      })
    }
    if (loggedIn !== undefined) return loggedIn
    if (Date.now() > deadline) throw new Error(`${what}: no SSH login within ${PHASE_TIMEOUT_MS / 1000} s`)
    await sleep(POLL_MS)
  }
}

/** The guest's uptime (ms) on its last `GUEST-READY <host> <uptime>` serial line (it may trail the login a little). */
async function guestUptime(consoleLog: string): Promise<number> {
  for (let i = 0; i < 30; i++) {
    const all = [...(await readFile(consoleLog, 'utf8').catch(() => '')).matchAll(/GUEST-READY \S+ ([\d.]+)/g)]
    if (all.length) return Number(all.at(-1)![1]) * 1000
    await sleep(100)
  }
  return NaN
}

// ------------------------------------------------------------------ driver side
interface GuestReady {
  time: number
  seconds: number
}

/** The driver's last `guest ready` log line for the server (rescue or not): when it logged it and the boot's seconds. */
function lastGuestReady(skiff: SkiffProcess, id: string, rescue: boolean): GuestReady {
  let found: GuestReady | undefined
  for (const line of skiff.output().split('\n')) {
    // A restored rescue system logs its restore instead (its `seconds` from the rescue's start).
    if (!(line.includes('"guest ready"') || line.includes('"rescue system restored from its saved state"')) || !line.includes(id)) continue
    try {
      const j = JSON.parse(line) as { time: number; seconds: number; rescue: boolean }
      if (j.rescue === rescue) found = { time: j.time, seconds: j.seconds }
    } catch {
      /* a line cut by the tail */
    }
  }
  if (!found) throw new Error(`no 'guest ready' log line for ${id} (rescue: ${rescue})`)
  return found
}

async function driverRun(skiff: SkiffProcess, api: VmApi, imageRef: string, n: number): Promise<RunTimes> {
  const p1 = password('P1')
  const p2 = password('P2')
  let id = ''
  let port: number | undefined
  const portOf = async () => {
    if (port === undefined) {
      const r = await api.compute('GET', `/servers/${id}/access`)
      port = r.body.access?.ssh?.port as number | undefined
    }
    return port
  }
  /** Request, then the SSH login and the API status side by side; QEMU's start from the driver's log. */
  const phase = async (request: () => Promise<void>, pw: string, status: string, rescue: boolean): Promise<Timing> => {
    const t0 = Date.now()
    await request()
    const [login, status_] = await Promise.all([
      loginAt(portOf, pw, `driver ${status}`),
      api.waitStatus(id, status, PHASE_TIMEOUT_MS).then(() => Date.now()),
    ])
    const ready = lastGuestReady(skiff, id, rescue)
    // The driver's VM dirs (qemu-driver.ts): <qemu dir>/s/<id>/, the rescue VM's in r/ (gone after unrescue).
    const uptime = await guestUptime(path.join(skiff.dataDir, 'qemu', 's', id, ...(rescue ? ['r'] : []), 'console.log'))
    return { login: login - t0, status: status_ - t0, qemuStart: ready.time - ready.seconds * 1000 - t0, uptime }
  }

  const create = await phase(
    async () => {
      const r = await api.compute('POST', '/servers', { server: { name: `bench-${n}`, imageRef, flavorRef: '1', adminPass: p1 } })
      if (r.status !== 202) throw new Error(`create: ${r.status} ${JSON.stringify(r.body)}`)
      id = r.body.server.id as string
    },
    p1,
    'ACTIVE',
    false,
  )
  try {
    const rescue = await phase(
      async () => {
        const r = await api.compute('POST', `/servers/${id}/action`, { rescue: { adminPass: p2 } })
        if (r.status !== 200) throw new Error(`rescue: ${r.status} ${JSON.stringify(r.body)}`)
      },
      p2,
      'RESCUE',
      true,
    )
    const unrescue = await phase(
      async () => {
        const r = await api.compute('POST', `/servers/${id}/action`, { unrescue: null })
        if (r.status !== 202) throw new Error(`unrescue: ${r.status} ${JSON.stringify(r.body)}`)
      },
      p1,
      'ACTIVE',
      false,
    )
    return { create, rescue, unrescue }
  } finally {
    await api.compute('DELETE', `/servers/${id}`)
    await api.waitStatus(id, 'DELETED', 60_000)
  }
}

// ------------------------------------------------------------------ bare side
interface Bare {
  accel: Accel
  vcpus: number
  memMb: number
  guest: { kernel: string; initrd: string; disk: string }
}

/** What the driver does for a VM, by hand: overlay, config drive, QEMU with the driver's arguments. */
async function prepare(dir: string, base: string, name: string, pw: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, path.join(dir, 'disk.qcow2')])
  await writeConfigDrive(path.join(dir, 'config.iso'), { uuid: randomUUID(), name, hostname: name, adminPass: pw })
}

async function startQemu(b: Bare, dir: string, name: string, disks: DiskArg[]): Promise<void> {
  await run(
    'qemu-system-x86_64',
    buildQemuArgs({
      dir,
      name,
      accel: b.accel,
      vcpus: b.vcpus,
      memMb: b.memMb,
      kernel: b.guest.kernel,
      initrd: b.guest.initrd,
      disks,
      sshPort: BARE_PORT,
    }),
    { timeout: 60_000 },
  )
}

const pidOf = (dir: string) => Number(readFileSync(vmFiles(dir).pid, 'utf8').trim())

/** ACPI power button over QMP, then wait (polling as the driver does) until the process is gone: it holds the disk's write lock. */
async function powerdown(dir: string): Promise<void> {
  const pid = pidOf(dir)
  const q = await QmpClient.connect(vmFiles(dir).qmp, 5000)
  try {
    await q.execute('system_powerdown')
  } finally {
    q.close()
  }
  const deadline = Date.now() + 30_000
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`QEMU ${pid} did not power down within 30 s`)
    await sleep(50)
  }
}

/** SIGKILL whatever QEMU runs under `dir` and wait until it has gone (the port is free again). */
async function killAndWait(dir: string): Promise<void> {
  killQemus(dir)
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && !(await portFree(BARE_PORT))) await sleep(50)
}

async function bareRun(b: Bare, root: string, n: number): Promise<RunTimes> {
  if (!(await portFree(BARE_PORT))) throw new Error(`port ${BARE_PORT} (bare VMs) is in use`)
  const p1 = password('P1')
  const p2 = password('P2')
  const dir = path.join(root, `b${n}`)
  const r = path.join(dir, 'r')
  const name = `bare-${n}`
  const own: DiskArg[] = [
    { id: 'vda', file: path.join(dir, 'disk.qcow2'), format: 'qcow2' },
    { id: 'config-2', file: path.join(dir, 'config.iso'), format: 'raw', readOnly: true },
  ]
  const rescued: DiskArg[] = [
    { id: 'vda', file: path.join(r, 'disk.qcow2'), format: 'qcow2' },
    { id: 'vdb', file: path.join(dir, 'disk.qcow2'), format: 'qcow2' },
    { id: 'config-2', file: path.join(r, 'config.iso'), format: 'raw', readOnly: true },
  ]
  const port = async () => BARE_PORT
  try {
    let t0 = Date.now()
    await prepare(dir, b.guest.disk, name, p1)
    let qemuStart = Date.now() - t0
    await startQemu(b, dir, name, own)
    const create = { login: (await loginAt(port, p1, 'bare create')) - t0, qemuStart, uptime: await guestUptime(vmFiles(dir).console) }

    t0 = Date.now()
    await powerdown(dir)
    await prepare(r, b.guest.disk, name, p2)
    qemuStart = Date.now() - t0
    await startQemu(b, r, name, rescued)
    const rescue = { login: (await loginAt(port, p2, 'bare rescue')) - t0, qemuStart, uptime: await guestUptime(vmFiles(r).console) }

    t0 = Date.now()
    await powerdown(r)
    await rm(r, { recursive: true, force: true })
    qemuStart = Date.now() - t0
    await startQemu(b, dir, name, own)
    const unrescue = { login: (await loginAt(port, p1, 'bare unrescue')) - t0, qemuStart, uptime: await guestUptime(vmFiles(dir).console) }
    return { create, rescue, unrescue }
  } finally {
    await killAndWait(dir)
    await rm(dir, { recursive: true, force: true })
  }
}

// ------------------------------------------------------------------ main
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')

await runMain(async () => {
  const runs = option('runs', 3)
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs expects a whole number >= 1')
  const loadStart = load()
  // One short root for everything (unix socket paths are limited to 107 bytes): skiff's data dir and the bare VMs.
  const root = tempDir('sbq-')
  process.once('exit', () => killQemus(root)) // daemonized QEMUs outlive us otherwise, whatever failed
  const bareRoot = path.join(root, 'bare')
  let skiff: SkiffProcess | undefined
  let warmSkiff: SkiffProcess | undefined
  try {
    console.log(`starting skiff serve --driver qemu (the guest image is built at first start) ...`)
    skiff = await startSkiffProcess({
      dataDir: path.join(root, 'skiff'),
      startTimeoutMs: 180_000,
      extraArgs: ['--driver', 'qemu', '--qemu-ssh-ports', PORTS, '--log-level', 'info', '--no-qemu-warm-rescue'],
    })
    const api = await vmApi(skiff)
    console.log(`starting a second skiff serve --driver qemu, with warm rescue ...`)
    warmSkiff = await startSkiffProcess({
      dataDir: path.join(root, 'warm'),
      startTimeoutMs: 180_000,
      extraArgs: ['--driver', 'qemu', '--qemu-ssh-ports', WARM_PORTS, '--log-level', 'info'],
    })
    const warmApi = await vmApi(warmSkiff)
    const qemuDir = path.join(skiff.dataDir, 'qemu')
    const guest = guestFiles(path.join(qemuDir, 'guest'))
    // The driver probes the accelerator at its first boot and caches it in <qemu dir>/accel; probe
    // now, with its own function and file, so no measured create pays for the probe.
    await probeAccel({ kernel: guest.kernel, cacheFile: path.join(qemuDir, 'accel') })
    const accel = readFileSync(path.join(qemuDir, 'accel'), 'utf8').trim() as Accel
    const flavor = (await api.compute('GET', '/flavors/1')).body.flavor as { vcpus: number; ram: number; name: string }
    const images = await api.image('GET', '/v2/images?name=skiff-base')
    const imageRef = images.body.images?.[0]?.id as string | undefined
    if (!imageRef) throw new Error(`no skiff-base image: ${JSON.stringify(images.body)}`)
    const bare: Bare = { accel, vcpus: flavor.vcpus, memMb: flavor.ram, guest }
    console.log(`accelerator ${accel}; flavor 1 (${flavor.name}): ${flavor.vcpus} vCPU, ${flavor.ram} MB; ${runs} run(s) each, alternating`)

    const warmImage = (await warmApi.image('GET', '/v2/images?name=skiff-base')).body.images?.[0]?.id as string
    // The warm skiff's first rescue boots its rescue system, then saves it: done before the measured runs.
    console.log('warm-up: one rescue on the warm skiff, then its warm rescue system is saved ...')
    await driverRun(warmSkiff, warmApi, warmImage, 0)
    const warmDir = path.join(warmSkiff.dataDir, 'qemu', 'warm')
    const saved = () => existsSync(warmDir) && readdirSync(warmDir).some((d) => existsSync(path.join(warmDir, d, 'meta.json')))
    for (const deadline = Date.now() + PHASE_TIMEOUT_MS; !saved(); await sleep(POLL_MS)) {
      if (Date.now() > deadline) throw new Error(`no warm rescue system saved within ${PHASE_TIMEOUT_MS / 1000} s`)
    }

    const results = { driver: [] as RunTimes[], bare: [] as RunTimes[], warm: [] as RunTimes[] }
    for (let i = 1; i <= runs; i++) {
      const w = await driverRun(warmSkiff, warmApi, warmImage, i)
      results.warm.push(w)
      console.log(`run ${i} warm:   rescue ${s(w.rescue.login)} (RESCUE at ${s(w.rescue.status!)}), unrescue ${s(w.unrescue.login)}`)
      const d = await driverRun(skiff, api, imageRef, i)
      results.driver.push(d)
      console.log(
        `run ${i} driver: ${PHASES.map((p) => `${p} ${s(d[p].login)} (QEMU at ${s(d[p].qemuStart)}, uptime ${s(d[p].uptime)}, ${p === 'rescue' ? 'RESCUE' : 'ACTIVE'} at ${s(d[p].status!)})`).join(', ')}`,
      )
      const b = await bareRun(bare, bareRoot, i)
      results.bare.push(b)
      console.log(
        `run ${i} bare:   ${PHASES.map((p) => `${p} ${s(b[p].login)} (QEMU at ${s(b[p].qemuStart)}, uptime ${s(b[p].uptime)})`).join(', ')}`,
      )
    }

    const of = (side: RunTimes[], p: Phase, k: keyof Timing) => side.map((r) => r[p][k]!)
    const range = (xs: number[]) => `${s(Math.min(...xs))}–${s(Math.max(...xs))}`
    console.log(`\nRequest → SSH login with the right password, qemu driver vs bare QEMU (${accel}, ${runs} run(s) each, medians)\n`)
    console.log(
      table(
        ['phase', 'driver', 'bare', 'driver/bare', 'overhead', 'driver min–max', 'bare min–max'],
        PHASES.map((p) => {
          const d = of(results.driver, p, 'login')
          const b = of(results.bare, p, 'login')
          const ratio = median(d) / median(b)
          return [p, s(median(d)), s(median(b)), ratio.toFixed(3), `${((ratio - 1) * 100).toFixed(1)} %`, range(d), range(b)]
        }),
      ),
    )
    const pair = (p: Phase, f: (t: Timing) => number) =>
      `${s(median(results.driver.map((r) => f(r[p]))))} / ${s(median(results.bare.map((r) => f(r[p]))))}`
    console.log(`\nWhere the time goes (medians, driver / bare): request → QEMU started → SSH login; the guest's uptime at GUEST-READY\n`)
    console.log(
      table(
        ['phase', 'to QEMU start', 'QEMU start → login', 'guest uptime at ready', 'driver: API status'],
        PHASES.map((p) => [
          p,
          pair(p, (t) => t.qemuStart),
          pair(p, (t) => t.login - t.qemuStart),
          pair(p, (t) => t.uptime),
          `${p === 'rescue' ? 'RESCUE' : 'ACTIVE'} at ${s(median(of(results.driver, p, 'status')))}`,
        ]),
      ),
    )
    const rescueRow = (label: string, side: RunTimes[]) => {
      const xs = of(side, 'rescue', 'login')
      return [label, s(median(xs)), range(xs), side === results.bare ? '' : s(median(of(side, 'rescue', 'status')))]
    }
    console.log(`\nRescue request → SSH login with the rescue password (medians of ${runs}; aim: warm ≤ 5 s)\n`)
    console.log(
      table(
        ['rescue system', 'to SSH login', 'min–max', 'RESCUE shown at'],
        [
          rescueRow('warm: restored from its saved state', results.warm),
          rescueRow('cold: booted (--no-qemu-warm-rescue)', results.driver),
          rescueRow('bare QEMU: booted by hand', results.bare),
        ],
      ),
    )
    console.log(`\naim: the driver adds < 10 %; load average (1, 5, 15 min) at start ${loadStart}, at end ${load()}`)
  } finally {
    killQemus(root)
    await skiff?.stop()
    await warmSkiff?.stop()
  }
})
