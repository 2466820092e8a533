// KVM or TCG? /dev/kvm being there proves nothing: on a PVM-nested host QEMU opens it and
// query-kvm says enabled, yet a stock kernel never prints a line. So boot the guest kernel
// alone under KVM and wait for its banner on serial; without it within the timeout, use TCG.
// The answer is cached in a file: the probe costs its whole timeout when KVM does not work.
import { spawn } from 'node:child_process'
import { constants } from 'node:fs'
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Accel } from './qemu-args.ts'

export async function probeAccel(opts: {
  kernel: string
  cacheFile: string
  timeoutMs?: number
}): Promise<{ accel: Accel; cached: boolean }> {
  const cached = (await readFile(opts.cacheFile, 'utf8').catch(() => '')).trim()
  if (cached === 'kvm' || cached === 'tcg') return { accel: cached, cached: true }
  const accel = (await kvmBoots(opts.kernel, opts.timeoutMs ?? 10_000)) ? 'kvm' : 'tcg'
  await writeFile(opts.cacheFile, accel + '\n')
  return { accel, cached: false }
}

async function kvmBoots(kernel: string, timeoutMs: number): Promise<boolean> {
  if (
    !(await access('/dev/kvm', constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    ))
  )
    return false
  const dir = await mkdtemp(path.join(tmpdir(), 'skiff-kvm-probe-'))
  const log = path.join(dir, 'serial.log')
  const child = spawn(
    'qemu-system-x86_64',
    [
      '-accel',
      'kvm',
      '-cpu',
      'host',
      '-m',
      '128',
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      '-serial',
      `file:${log}`,
      '-kernel',
      kernel,
      '-append',
      'console=ttyS0 panic=-1',
    ],
    { stdio: 'ignore' },
  )
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  child.once('error', () => {
    exited = true
  })
  try {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline && !exited) {
      if ((await readFile(log, 'utf8').catch(() => '')).includes('Linux version')) return true
      await sleep(200)
    }
    return false
  } finally {
    if (!exited) child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  }
}
