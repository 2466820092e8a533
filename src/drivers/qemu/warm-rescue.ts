// Warm rescue systems (the qemu driver's instant rescue): a rescue image booted once per agent
// host and machine shape, to its ready point, with no secret of anyone's, and its memory and
// devices saved (`savevm` into its own qcow2 overlay: QEMU 7.2 has no `file:` migration, and a
// `migrate` to a stream fails at its end under -runas). A rescue restores a copy of it
// (`-loadvm`) instead of booting, hands it its secrets over the rescue port (rescue-channel.ts)
// and hot-adds the server's disk. This module holds the saved states' places and names, and the
// few host-side helpers the restore needs; the driver does the rest.
//   <qemu-dir>/warm/<key>/disk.qcow2   overlay on the pinned rescue image, holding the snapshot
//   <qemu-dir>/warm/<key>/meta.json    what the key was made of
//   <qemu-dir>/warm/<key>.failed       why a build failed (tried again after an hour)
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { open, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The internal snapshot of a warm rescue disk that holds the booted system. */
export const WARM_TAG = 'skiff-warm'
/** Bumped when the warm machine's devices or the guest protocol change: older saved states are not restored. */
const WARM_FORMAT = 1
/** A failed build is tried again after this long. */
const RETRY_FAILED_MS = 3600_000

/** Everything a saved state depends on: a restore needs the same machine exactly. */
export interface WarmShape {
  /** The rescue image's identity: its checksum where known, else its pinned file. */
  image: string
  disk: string
  format: 'qcow2' | 'raw'
  kernel: string
  initrd: string
  accel: string
  vcpus: number
  memMb: number
  qemuVersion: string
}

export const warmKey = (shape: WarmShape) =>
  createHash('sha256')
    .update(JSON.stringify({ warmFormat: WARM_FORMAT, ...shape }))
    .digest('hex')
    .slice(0, 16)

export function warmPaths(qemuDir: string, key: string) {
  const dir = path.join(qemuDir, 'warm', key)
  return { dir, building: `${dir}.b`, disk: path.join(dir, 'disk.qcow2'), meta: path.join(dir, 'meta.json'), failed: `${dir}.failed` }
}

/** A saved state is there to restore. */
export const warmReady = (qemuDir: string, key: string) => existsSync(warmPaths(qemuDir, key).meta)

/** A build of this state failed lately: not tried at every rescue. */
export async function warmFailedLately(qemuDir: string, key: string): Promise<boolean> {
  const st = await stat(warmPaths(qemuDir, key).failed).catch(() => null)
  return st !== null && Date.now() - st.mtimeMs < RETRY_FAILED_MS
}

let qemuVersion: Promise<string> | undefined
/** `qemu-system-x86_64 --version`'s first line (a saved state restores only into the QEMU that made it). */
export function qemuVersionLine(): Promise<string> {
  qemuVersion ??= run('qemu-system-x86_64', ['--version']).then((r) => r.stdout.split('\n')[0]!.trim())
  return qemuVersion
}

/** A disk and its backing files, top first, as `qemu-img` reads them (-U: a running QEMU may hold it). */
export async function backingChain(file: string): Promise<{ filename: string; format: 'qcow2' | 'raw' }[]> {
  const { stdout } = await run('qemu-img', ['info', '-U', '--backing-chain', '--output', 'json', file])
  return (JSON.parse(stdout) as { filename: string; format: string }[]).map((e) => {
    if (e.format !== 'qcow2' && e.format !== 'raw') throw new Error(`${e.filename}: a ${e.format} disk cannot be hot-added`)
    return { filename: e.filename, format: e.format }
  })
}

/**
 * Start a daemonized QEMU with `files` open as its fds 3, 4, ... (`-add-fd`): a QEMU that runs
 * as `nobody` cannot open the server's disk in a 0700 directory when it is hot-added later.
 */
export async function startQemuWithFds(args: string[], files: { path: string; write: boolean }[], timeoutMs = 120_000): Promise<void> {
  const handles: FileHandle[] = []
  try {
    for (const f of files) handles.push(await open(f.path, f.write ? 'r+' : 'r'))
    await new Promise<void>((resolve, reject) => {
      const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe', ...handles.map((h) => h.fd)] })
      let stderr = ''
      child.stderr!.on('data', (b: Buffer) => {
        stderr += b.toString()
      })
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      child.on('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
      // -daemonize: the first process exits once the VM is set up, with its errors on stderr.
      child.on('exit', (code) => {
        clearTimeout(timer)
        if (code === 0) resolve()
        else reject(new Error(`QEMU did not start: ${stderr.trim().split('\n').slice(-3).join(' ') || `exit ${code}`}`))
      })
    })
  } finally {
    await Promise.all(handles.map((h) => h.close()))
  }
}
