// Rescue checkpoints on real qcow2 files (qemu-img, qemu-io; no VM): keep, discard, and a keep
// cut short at each point, which leaves both choices open until its final rename.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { discardChanges, keepChanges, takeCheckpoint } from '../../src/drivers/qemu/checkpoint.ts'
import { qemuSkipReason } from '../helpers/qemu.ts'

const run = promisify(execFile)
const skip = qemuSkipReason()
const K = 64 * 1024

/** Write `pattern` over [offset, offset + 64 KiB) of a qcow2 (through its backing chain). */
const write = (file: string, pattern: number, offset: number) =>
  run('qemu-io', ['-f', 'qcow2', '-c', `write -q -P ${pattern} ${offset} ${K}`, file])
/** The byte pattern the disk shows at `offset` (64 KiB of it), or null if mixed. */
async function patternAt(file: string, offset: number): Promise<number | null> {
  for (const p of [0x00, 0x11, 0x22, 0x33, 0x44]) {
    const r = await run('qemu-io', ['-r', '-f', 'qcow2', '-c', `read -q -P ${p} ${offset} ${K}`, file]).catch(
      (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? 'failed', stderr: e.stderr ?? '' }),
    )
    if (!/Pattern verification failed|failed/.test(r.stdout + r.stderr)) return p
  }
  return null
}
const view = async (file: string) => [await patternAt(file, 0), await patternAt(file, K), await patternAt(file, 2 * K)]
const backingOf = async (file: string) =>
  (JSON.parse((await run('qemu-img', ['info', '-U', '--output', 'json', file])).stdout) as { 'full-backing-filename'?: string })[
    'full-backing-filename'
  ]

describe('rescue checkpoints on qcow2', { skip }, () => {
  let dir: string
  let base: string
  let disk: string
  let changes: string

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'skiff-ckpt-'))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  /** An image (0x11 at 0), a server's overlay on it (0x22 at 64 KiB), a checkpoint, the rescue's writes (0x44 at 0, 0x33 at 128 KiB). */
  async function rescued(name: string) {
    base = path.join(dir, `${name}-base.qcow2`)
    disk = path.join(dir, `${name}-disk.qcow2`)
    changes = path.join(dir, `${name}-changes.qcow2`)
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1M'])
    await write(base, 0x11, 0)
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, disk])
    await write(disk, 0x22, K)
    await takeCheckpoint(disk, changes)
    await write(changes, 0x44, 0)
    await write(changes, 0x33, 2 * K)
    assert.deepEqual(await view(changes), [0x44, 0x22, 0x33], 'the rescue sees the server disk with its changes')
    assert.deepEqual(await view(disk), [0x11, 0x22, 0x00], 'the checkpoint is untouched')
  }

  test('discard: the disk as it was', async () => {
    await rescued('discard')
    await discardChanges(changes)
    assert.equal(existsSync(changes), false)
    assert.deepEqual(await view(disk), [0x11, 0x22, 0x00])
    assert.equal(await backingOf(disk), base)
  })

  test('keep: the disk with the changes, on its own image again; run twice, nothing more happens', async () => {
    await rescued('keep')
    await keepChanges(disk, changes)
    assert.equal(existsSync(changes), false)
    assert.deepEqual(await view(disk), [0x44, 0x22, 0x33])
    assert.equal(await backingOf(disk), base, 'the disk rests on the image as before, not on a copy of itself')
    await keepChanges(disk, changes)
    assert.deepEqual(await view(disk), [0x44, 0x22, 0x33])
  })

  test('a keep cut short before its rename leaves the checkpoint whole: discard or keep still work', async () => {
    await rescued('cut')
    // What keepChanges does but its rename: the crash comes after the rebase.
    await run('qemu-img', ['rebase', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', changes])
    assert.deepEqual(await view(disk), [0x11, 0x22, 0x00], 'the rebase wrote only the overlay')
    assert.deepEqual(await view(changes), [0x44, 0x22, 0x33], 'which shows the same disk through its new backing')
    // Keep, run again, finishes it...
    await keepChanges(disk, changes)
    assert.deepEqual(await view(disk), [0x44, 0x22, 0x33])

    // ...and discard would have given the disk as it was.
    await rescued('cut2')
    await run('qemu-img', ['rebase', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', changes])
    await discardChanges(changes)
    assert.deepEqual(await view(disk), [0x11, 0x22, 0x00])
  })
})
