// Volumes plugged into and out of a running QEMU over QMP, as libvirt does it:
//   attach  the file opened here and handed to QEMU (`add-fd`, SCM_RIGHTS), `blockdev-add` of
//           /dev/fdset/N, `device_add` virtio-blk-pci with the volume id as serial
//   detach  `device_del`, the DEVICE_DELETED event (the guest let go of it), `blockdev-del`
// The file is handed over open because QEMU runs as `nobody` when Skiff runs as root (-runas):
// it could not open a 0600 file in a 0700 directory itself. Node cannot send a file descriptor
// over a unix socket, so a few lines of Python (3.9+: socket.send_fds) do the `add-fd` and the
// `blockdev-add` in one QMP session (the fd set lives while that session or a user of it does).
import { spawn } from 'node:child_process'
import { open } from 'node:fs/promises'
import { DriverError } from '../driver.ts'
import { volumeBlockdev, volumeNames } from './qemu-args.ts'
import { QmpError, type QmpClient } from './qmp.ts'

const ADD_FD_AND_BLOCKDEV = `
import json, socket, sys
path, node = sys.argv[1], json.loads(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(path)
f = s.makefile('r')
f.readline()
def cmd(name, args=None, fds=None):
    data = json.dumps({'execute': name, 'arguments': args or {}}).encode() + b'\\n'
    if fds: socket.send_fds(s, [data], fds)
    else: s.sendall(data)
    while True:
        m = json.loads(f.readline())
        if 'error' in m: sys.exit('%s: %s' % (name, m['error'].get('desc')))
        if 'return' in m: return m['return']
cmd('qmp_capabilities')
fdset = cmd('add-fd', {'opaque': node['node-name']}, [3])['fdset-id']
node['file']['filename'] = '/dev/fdset/%d' % fdset
cmd('blockdev-add', node)
`

/**
 * Hot-plug a volume's file into the VM whose QMP socket is `qmpSocket` (no other QMP client may
 * be connected: QEMU serves one at a time), then `device_add` it through `qmp` once connected.
 */
export async function blockdevAddOpen(qmpSocket: string, volumeId: string, file: string): Promise<void> {
  const fh = await open(file, 'r+')
  try {
    const node = volumeBlockdev(volumeNames(volumeId).node, file)
    // The open file is the helper's fd 3, which it hands to QEMU.
    const child = spawn('python3', ['-c', ADD_FD_AND_BLOCKDEV, qmpSocket, JSON.stringify(node)], {
      stdio: ['ignore', 'ignore', 'pipe', fh.fd],
    })
    let stderr = ''
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'ENOENT' ? new DriverError('attaching a volume to a running VM needs python3 (fd passing to QEMU)') : e),
      )
      child.once('close', resolve)
    }).finally(() => clearTimeout(timer))
    if (code !== 0)
      throw new DriverError(`attaching volume ${volumeId} failed: ${stderr.trim().split('\n').slice(-1)[0] ?? `exit ${code}`}`)
  } finally {
    await fh.close()
  }
}

/** The virtio-blk device of a volume whose block node is in QEMU already (its serial: the volume id). */
export async function deviceAdd(q: QmpClient, volumeId: string): Promise<void> {
  const { node, device } = volumeNames(volumeId)
  try {
    await q.execute('device_add', { driver: 'virtio-blk-pci', drive: node, id: device, serial: volumeId })
  } catch (e) {
    // The node without its device would hold the file: dropped, so a retry starts clean.
    await q.execute('blockdev-del', { 'node-name': node }).catch(() => {})
    throw new DriverError(`attaching volume ${volumeId} failed: ${(e as Error).message}`)
  }
}

/**
 * Unplug a volume: the guest is asked to let go (ACPI eject) and the device goes once it has
 * (DEVICE_DELETED); then the block node (and the file QEMU held) goes. A guest that does not let
 * go within `timeoutMs` keeps the volume: an error, the volume stays attached.
 */
export async function unplug(q: QmpClient, volumeId: string, timeoutMs: number): Promise<void> {
  const { node, device } = volumeNames(volumeId)
  const deleted = new Promise<void>((resolve, reject) => {
    const off = q.onEvent((e) => {
      if (e.event !== 'DEVICE_DELETED' || e.data?.device !== device) return
      clearTimeout(timer)
      off()
      resolve()
    })
    const timer = setTimeout(() => {
      off()
      reject(new DriverError(`the guest did not release volume ${volumeId} within ${Math.round(timeoutMs / 1000)} s`))
    }, timeoutMs)
    timer.unref()
  })
  deleted.catch(() => {}) // awaited below, unless the device is gone already
  try {
    await q.execute('device_del', { id: device })
    await deleted
  } catch (e) {
    // A detach run again: the device went already (the node may not have).
    if (!(e instanceof QmpError && e.errorClass === 'DeviceNotFound')) {
      throw e instanceof DriverError ? e : new DriverError(`detaching volume ${volumeId} failed: ${(e as Error).message}`)
    }
  }
  // Gone already (a detach run again), or the device went: the node goes too.
  const nodes = await q.execute<{ 'node-name': string }[]>('query-named-block-nodes', { flat: true })
  if (nodes.some((n) => n['node-name'] === node)) await q.execute('blockdev-del', { 'node-name': node })
}

/** Grow an attached volume: the guest sees the new size at once. */
export async function blockResize(q: QmpClient, volumeId: string, sizeGb: number): Promise<void> {
  await q.execute('block_resize', { 'node-name': volumeNames(volumeId).node, size: sizeGb * 2 ** 30 })
}
