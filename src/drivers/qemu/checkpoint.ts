// Rescue checkpoints on qcow2 files (the qemu driver's; tested with qemu-img and qemu-io alone).
// The checkpoint is the server's disk itself, frozen: the rescue system gets an overlay on it
// (`changes`), and only the overlay is ever written until the checkpoint is settled:
//   discard  delete the overlay; the disk was never written.
//   keep     rebase the overlay (qemu-img rebase, safe mode) from the disk onto the disk's own
//            backing image: what the disk holds over its backing is copied into the overlay, so
//            the overlay alone (over that backing) is the whole disk with the rescue's changes.
//            Only the overlay is written, and the disk it shows is the same through either
//            backing, so a crash mid-way leaves both choices open. Then the overlay is renamed
//            over the disk, one step: the checkpoint is spent.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The qemu-img failure, its last lines. */
function why(e: unknown): string {
  const err = e as { stderr?: string; message: string }
  return (err.stderr || err.message).trim().split('\n').slice(-2).join(' ')
}

/** Take the checkpoint: `changes`, a new overlay on `disk` (a stopped VM's, flushed). Written under a temporary name, then renamed. */
export async function takeCheckpoint(disk: string, changes: string): Promise<void> {
  const tmp = `${changes}.tmp`
  await rm(tmp, { force: true })
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', disk, tmp])
  await rename(tmp, changes)
}

/** Drop what was written on top of the checkpoint. */
export async function discardChanges(changes: string): Promise<void> {
  await rm(changes, { force: true })
}

/**
 * Keep what was written on top of the checkpoint: `disk` becomes the disk with the changes.
 * Idempotent: a run cut short (a crash) is finished by running it again; once `changes` is
 * gone, there is nothing left to do.
 */
export async function keepChanges(disk: string, changes: string, timeoutMs = 30 * 60_000): Promise<void> {
  if (!existsSync(changes)) return
  const { stdout } = await run('qemu-img', ['info', '-U', '--output', 'json', disk])
  const info = JSON.parse(stdout) as { 'full-backing-filename'?: string; 'backing-filename-format'?: string }
  const base = info['full-backing-filename']
  const backing = base ? ['-b', base, '-F', info['backing-filename-format'] ?? 'qcow2'] : ['-b', '']
  try {
    await run('qemu-img', ['rebase', '-q', '-f', 'qcow2', ...backing, changes], { timeout: timeoutMs })
  } catch (e) {
    throw new Error(`keeping the rescue's changes failed: ${why(e)}`)
  }
  await rename(changes, disk)
}
