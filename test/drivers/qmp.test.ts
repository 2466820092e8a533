// The QMP client against a real QEMU with no machine at all (`-machine none`): greeting,
// capabilities, commands, errors, and the connection closing when QEMU quits.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { QmpClient, QmpError } from '../../src/drivers/qemu/qmp.ts'
import { qemuSkipReason } from '../helpers/qemu.ts'

const skip = qemuSkipReason()

describe('QMP client against qemu-system-x86_64 -machine none', { skip }, () => {
  let dir: string
  let sock: string
  let qemu: ChildProcess

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'skiff-qmp-'))
    sock = path.join(dir, 'qmp.sock')
    qemu = spawn(
      'qemu-system-x86_64',
      ['-machine', 'none', '-nodefaults', '-no-user-config', '-display', 'none', '-S', '-qmp', `unix:${sock},server=on,wait=off`],
      { stdio: 'ignore' },
    )
    const deadline = Date.now() + 15_000
    while (!existsSync(sock)) {
      if (Date.now() > deadline) throw new Error('QEMU did not create its QMP socket within 15 s')
      await sleep(20)
    }
  })

  after(() => {
    if (qemu.exitCode === null) qemu.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  test('commands, errors, and quit', async () => {
    const qmp = await QmpClient.connect(sock)
    const version = await qmp.execute<{ qemu: { major: number } }>('query-version')
    assert.ok(version.qemu.major >= 5)
    // Several commands in flight are matched to their answers by id.
    const [status, kvm] = await Promise.all([
      qmp.execute<{ status: string; running: boolean }>('query-status'),
      qmp.execute<{ enabled: boolean; present: boolean }>('query-kvm'),
    ])
    assert.equal(status.running, false)
    assert.equal(typeof kvm.present, 'boolean')
    await assert.rejects(qmp.execute('no-such-command'), (e: unknown) => e instanceof QmpError && e.errorClass === 'CommandNotFound')
    await assert.rejects(qmp.execute('query-status', { bogus: 1 }), QmpError)
    const exited = new Promise((resolve) => qemu.once('exit', resolve))
    await qmp.execute('quit')
    assert.equal(await qmp.waitClosed(10_000), true)
    assert.equal(qmp.closed, true)
    await assert.rejects(qmp.execute('query-status'))
    await exited
  })
})
