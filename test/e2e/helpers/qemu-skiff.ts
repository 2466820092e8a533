// The `skiff serve --driver qemu` of a qemu end-to-end file: started on the file's SSH port range
// at log level info, with the demo user's API client and the skiff-base image's id; restarted on
// the same data dir; stopped in `after` with no QEMU left behind, its figures printed.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startSkiffProcess, type SkiffProcess } from './skiff-process.ts'
import { killQemus, vmApi, type VmApi } from './vm.ts'

export interface QemuSkiffOptions {
  /** The file's reserved range for `--qemu-ssh-ports` (HELPERS.md, test/run.sh), e.g. '23100-23199'. */
  sshPorts: string
  /** More `skiff serve` flags: `--no-qemu-warm-rescue`, `--database-url …`, … */
  extraArgs?: string[]
  /** Booting the first time builds the guest and probes the accelerator: 180 s unless told. */
  startTimeoutMs?: number
  /** The caller's data dir (agents read its secret.key; the caller removes it). Without: a temp dir stop() removes. */
  dataDir?: string
  /** The file's figures (`# key: value` lines printed by stop()); a record of the helper's without. */
  figures?: Record<string, string>
}

/** Anything `stop()` stops along with Skiff: an agent process. */
interface Stoppable {
  stop(): Promise<void>
}

export interface QemuSkiff {
  /** The running Skiff and its API client as the demo user: new ones after restart(). */
  skiff: SkiffProcess
  api: VmApi
  dataDir: string
  /** `<dataDir>/qemu`: the driver's VMs, images and volumes. */
  qemuDir: string
  /** The id of the `skiff-base` image. */
  baseImageId: string
  /** Seconds the first start took (the guest build and accelerator probe included). */
  startSeconds: number
  /** Figures of the file, printed by stop() as `# key: value` lines. */
  figures: Record<string, string>
  /** Stop Skiff (if it still runs; its VMs stay) and start it again on the same data dir. */
  restart(): Promise<QemuSkiff>
  /**
   * For `after`: SIGKILL every QEMU under qemuDir (and `also.qemuDirs`), stop `also.agents`, then
   * Skiff, remove the data dir when it is the helper's, print the figures.
   */
  stop(also?: { qemuDirs?: string[]; agents?: (Stoppable | undefined)[] }): Promise<void>
}

export async function startQemuSkiff(opts: QemuSkiffOptions): Promise<QemuSkiff> {
  const ownDir = !opts.dataDir
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), 'skiff-e2e-qemu-'))
  const qemuDir = path.join(dataDir, 'qemu')
  const start = () =>
    startSkiffProcess({
      dataDir,
      startTimeoutMs: opts.startTimeoutMs ?? 180_000,
      extraArgs: ['--driver', 'qemu', '--qemu-ssh-ports', opts.sshPorts, '--log-level', 'info', ...(opts.extraArgs ?? [])],
    })
  const cleanUp = () => {
    if (ownDir) rmSync(dataDir, { recursive: true, force: true })
  }

  const t0 = Date.now()
  let skiff: SkiffProcess
  try {
    skiff = await start()
  } catch (e) {
    killQemus(qemuDir)
    cleanUp()
    throw e
  }
  const startSeconds = (Date.now() - t0) / 1000
  try {
    const api = await vmApi(skiff)
    const images = await api.image('GET', '/v2/images?name=skiff-base')
    const baseImageId = images.body.images?.[0]?.id as string | undefined
    if (!baseImageId) throw new Error(`no skiff-base image: ${images.status} ${JSON.stringify(images.body)}`)
    const vm: QemuSkiff = {
      skiff,
      api,
      dataDir,
      qemuDir,
      baseImageId,
      startSeconds,
      figures: opts.figures ?? {},
      async restart() {
        await vm.skiff.stop()
        vm.skiff = await start()
        vm.api = await vmApi(vm.skiff)
        return vm
      },
      async stop(also = {}) {
        for (const dir of [qemuDir, ...(also.qemuDirs ?? [])]) killQemus(dir)
        for (const agent of also.agents ?? []) await agent?.stop()
        await vm.skiff.stop()
        cleanUp()
        const lines = Object.entries(vm.figures).map(([k, v]) => `# ${k}: ${v}`)
        if (lines.length) console.log(lines.join('\n'))
      },
    }
    return vm
  } catch (e) {
    killQemus(qemuDir)
    await skiff.stop()
    cleanUp()
    throw e
  }
}
