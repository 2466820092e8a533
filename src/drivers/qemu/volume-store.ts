// The volumes whose data this host serves, one qcow2 file each, and their snapshots (tested
// with qemu-img alone):
//   <dir>/<volume id>.qcow2         the volume, at its size (0600)
//   <dir>/snap/<snapshot id>.qcow2  a snapshot: a standalone copy of the volume when it was taken
// A volume is standalone (no backing file): deleting the image, snapshot or volume it was made
// from never touches it. Files are written under a temporary name and renamed, so a task run
// again after a crash finds either no file or a whole one.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { DriverError } from '../driver.ts'

const run = promisify(execFile)

/** The qemu-img failure, its last lines. */
function why(e: unknown): string {
  const err = e as { stderr?: string; message: string }
  return (err.stderr || err.message).trim().split('\n').slice(-2).join(' ')
}

async function qemuImg(args: string[], timeoutMs = 30 * 60_000): Promise<string> {
  try {
    return (await run('qemu-img', args, { timeout: timeoutMs })).stdout
  } catch (e) {
    throw new DriverError(`qemu-img ${args[0]} failed: ${why(e)}`)
  }
}

/** What a new volume's data is copied from (nothing: blank). */
export type VolumeSource = { kind: 'blank' } | { kind: 'image'; file: string; format: 'qcow2' | 'raw' } | { kind: 'file'; file: string }

export class VolumeStore {
  readonly #dir: string

  constructor(dir: string) {
    this.#dir = dir
  }

  file(volumeId: string): string {
    return path.join(this.#dir, `${safeId(volumeId)}.qcow2`)
  }

  snapshotFile(snapshotId: string): string {
    return path.join(this.#dir, 'snap', `${safeId(snapshotId)}.qcow2`)
  }

  has(volumeId: string): boolean {
    return existsSync(this.file(volumeId))
  }

  /** The volume's file at `sizeGb`, blank or a copy of `source` (grown to the size, never shrunk). Done already: nothing. */
  async create(volumeId: string, sizeGb: number, source: VolumeSource): Promise<void> {
    const file = this.file(volumeId)
    if (existsSync(file)) return
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const tmp = `${file}.tmp`
    await rm(tmp, { force: true })
    try {
      if (source.kind === 'blank') {
        await qemuImg(['create', '-q', '-f', 'qcow2', tmp, `${sizeGb}G`])
      } else {
        const format = source.kind === 'image' ? source.format : 'qcow2'
        // -U: a source volume may be attached to a running VM (a clone of an in-use volume).
        await qemuImg(['convert', '-U', '-f', format, '-O', 'qcow2', source.file, tmp])
        const size = await this.virtualSize(tmp)
        if (size > sizeGb * 2 ** 30) throw new DriverError(`the source holds ${size} bytes, more than the volume's ${sizeGb} GiB`)
        if (size < sizeGb * 2 ** 30) await qemuImg(['resize', '-q', tmp, `${sizeGb}G`])
      }
      await chmod(tmp, 0o600)
      await rename(tmp, file)
    } catch (e) {
      await rm(tmp, { force: true })
      throw e
    }
  }

  /** A blank file of exactly `bytes` for a volume about to arrive by live migration (whatever was there goes). */
  async createToReceive(volumeId: string, bytes: number): Promise<void> {
    const file = this.file(volumeId)
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    await rm(file, { force: true })
    await qemuImg(['create', '-q', '-f', 'qcow2', `${file}.tmp`, String(bytes)])
    await chmod(`${file}.tmp`, 0o600)
    await rename(`${file}.tmp`, file)
  }

  async delete(volumeId: string): Promise<void> {
    await rm(this.file(volumeId), { force: true })
  }

  /** Grow a volume that no VM holds open (an attached one grows through QMP block_resize). */
  async extend(volumeId: string, sizeGb: number): Promise<void> {
    await this.#mustHave(volumeId)
    await qemuImg(['resize', '-q', this.file(volumeId), `${sizeGb}G`])
  }

  /**
   * A standalone copy of the volume as it is now. `unlocked`: a VM holds the file open (paused
   * by the caller, its disks flushed), so qemu-img reads it without taking the lock.
   */
  async snapshot(volumeId: string, snapshotId: string, unlocked: boolean): Promise<void> {
    await this.#mustHave(volumeId)
    const out = this.snapshotFile(snapshotId)
    if (existsSync(out)) return
    await mkdir(path.dirname(out), { recursive: true, mode: 0o700 })
    const tmp = `${out}.tmp`
    try {
      await qemuImg(['convert', ...(unlocked ? ['-U'] : []), '-f', 'qcow2', '-O', 'qcow2', this.file(volumeId), tmp])
      await chmod(tmp, 0o600)
      await rename(tmp, out)
    } catch (e) {
      await rm(tmp, { force: true })
      throw e
    }
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    await rm(this.snapshotFile(snapshotId), { force: true })
  }

  /**
   * Take in a volume's file handed over by another host's agent (a move, or an attach to a server
   * of this host): renamed into place when both dirs share a file system, else copied; written
   * under a temporary name first, so a crash leaves no half file under the volume's name.
   */
  async adopt(volumeId: string, from: string): Promise<void> {
    const file = this.file(volumeId)
    // Taken in already (a task run again after its agent stopped): nothing left to take.
    if (!existsSync(from) && existsSync(file)) return
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const tmp = `${file}.tmp`
    try {
      await rename(from, tmp).catch(() => copyFile(from, tmp))
      await chmod(tmp, 0o600)
      await rename(tmp, file)
    } catch (e) {
      await rm(tmp, { force: true })
      throw new DriverError(`the data of volume ${volumeId} could not be taken in: ${(e as Error).message}`)
    }
  }

  /** A copy of the volume's file at `to` (no VM writes it meanwhile: its guest is stopped, or it is detached). */
  async copyOut(volumeId: string, to: string): Promise<void> {
    await this.#mustHave(volumeId)
    await mkdir(path.dirname(to), { recursive: true, mode: 0o700 })
    await copyFile(this.file(volumeId), to)
  }

  /** The volumes whose files are here (whole ones: not a temporary file of a copy under way). */
  async list(): Promise<string[]> {
    const names = await readdir(this.#dir).catch(() => [] as string[])
    return names.filter((n) => /^[A-Za-z0-9-]+\.qcow2$/.test(n)).map((n) => n.slice(0, -'.qcow2'.length))
  }

  async virtualSize(file: string): Promise<number> {
    const out = await qemuImg(['info', '-U', '--output', 'json', file], 60_000)
    return (JSON.parse(out) as { 'virtual-size': number })['virtual-size']
  }

  async #mustHave(volumeId: string) {
    if (!this.has(volumeId)) throw new DriverError(`the data of volume ${volumeId} is not on this host`)
  }
}

/** Ids become file names: nothing but what a UUID holds. */
function safeId(id: string): string {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw new DriverError(`bad id ${JSON.stringify(id)}`)
  return id
}
