// Gate for the tests that run real QEMU: skipped with the reason where QEMU (or a guest kernel)
// is absent, but never in CI (CI=true), where .ci/run installs the packages: there a missing
// package is a failure, not a skip.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'

function has(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 })
    return true
  } catch {
    return false
  }
}

function gate(reason: string | false): string | false {
  if (reason && process.env.CI) throw new Error(`${reason} (CI=true: .ci/run should have installed it)`)
  return reason
}

/** Why QMP tests cannot run here, or false. */
export function qemuSkipReason(): string | false {
  return gate(
    has('qemu-system-x86_64', ['--version'])
      ? false
      : 'qemu-system-x86_64 is not installed (apt-get install --no-install-recommends qemu-system-x86 qemu-utils)',
  )
}

/** Why real guest VMs cannot run here, or false. */
export function guestSkipReason(): string | false {
  const q = qemuSkipReason()
  if (q) return q
  const missing = [
    ['qemu-img', ['--version']],
    ['genisoimage', ['--version']],
    ['mke2fs', ['-V']],
    ['cpio', ['--version']],
  ]
    .filter(([c, a]) => !has(c as string, a as string[]))
    .map(([c]) => c)
  const kernel = existsSync('/boot') && readdirSync('/boot').some((f) => f.startsWith('vmlinuz-'))
  if (!kernel) missing.push('a kernel in /boot (linux-image-amd64)')
  if (!existsSync('/bin/busybox') || !existsSync('/usr/sbin/dropbear')) missing.push('busybox-static, dropbear-bin')
  return gate(missing.length ? `missing for real VMs: ${missing.join(', ')} (see README, "The qemu driver")` : false)
}
