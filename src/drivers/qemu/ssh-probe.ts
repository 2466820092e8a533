// Probes of a guest's SSH server on its loopback forward: is it up, and which host key does it
// present. The host key comes from the SSH handshake itself, the key a client will see, rather
// than from a console line that a starved guest may cut.
import { createHash } from 'node:crypto'
import { connect, createServer } from 'node:net'
import type { Client as SshClient } from 'ssh2'

/** True if nothing listens on 127.0.0.1:`port`. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/** True if the port answers with an SSH identification string within a second. */
export function sshBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1')
    let got = ''
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(1000, () => done(false))
    sock.on('data', (b) => {
      got += b.toString('latin1')
      if (got.length >= 4) done(got.startsWith('SSH-'))
    })
    sock.on('error', () => done(false))
    sock.on('close', () => done(got.startsWith('SSH-')))
  })
}

/** OpenSSH's fingerprint of a host key blob: `SHA256:` and unpadded base64. */
export const sshFingerprint = (keyBlob: Buffer) => 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')

/**
 * The fingerprint of the host key the SSH server on 127.0.0.1:`port` presents, or null if no
 * handshake got that far within `timeoutMs`. The connection ends at the host key check: no
 * login is tried.
 */
export async function sshHostKey(port: number, timeoutMs: number): Promise<string | null> {
  // Loaded at the first probe: ssh2 is 30 modules that a start without the qemu driver need not read.
  const { Client } = (await import('ssh2')) as { Client: new () => SshClient }
  return new Promise((resolve) => {
    const c = new Client()
    let key: string | null = null
    const timer = setTimeout(() => finish(), timeoutMs)
    const finish = () => {
      clearTimeout(timer)
      c.end()
      resolve(key)
    }
    c.on('error', finish)
    c.on('close', finish)
    try {
      c.connect({
        host: '127.0.0.1',
        port,
        username: 'skiff-host-key-probe', // required; never used: no login is tried
        readyTimeout: timeoutMs,
        hostVerifier: (blob: Buffer) => {
          key = sshFingerprint(blob)
          // Refusing the key ends the handshake here; `finish` resolves with what was read.
          return false
        },
      })
    } catch {
      finish()
    }
  })
}
