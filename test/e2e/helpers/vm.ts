// Helpers for the tests that run real VMs: the QEMU processes of a directory, SSH logins with
// ssh2 (the host key's SHA256 fingerprint as OpenSSH prints it), and a client of the Skiff API
// that waits for a status with a deadline.
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client } from 'ssh2'
import { sshFingerprint } from '../../../src/drivers/qemu/ssh-probe.ts'
import { openrcToken, type SkiffProcess } from './skiff-process.ts'

/** Pids of QEMU processes whose command line mentions `needle`. */
export function qemuPids(needle: string): number[] {
  const pids: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    const cmd = (() => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8')
      } catch {
        return ''
      }
    })()
    if (cmd.startsWith('qemu-system') && cmd.includes(needle)) pids.push(Number(p))
  }
  return pids
}

/** SIGKILL every QEMU under `dir`: no VM outlives a test, whatever failed. */
export function killQemus(dir: string): void {
  for (const pid of qemuPids(dir)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
}

export type SshResult = { ok: true; out: string; hostKey: string } | { ok: false; reason: string }

/**
 * Log in as root with `password` (or `{ privateKey }`, a PEM or OpenSSH private key) and run
 * `command`; `{ok: false}` when authentication fails.
 */
export function ssh(port: number, password: string | { privateKey: string }, command: string): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const c = new Client()
    let hostKey = ''
    c.on('ready', () => {
      c.exec(command, (err, stream) => {
        if (err) {
          c.end()
          return reject(err)
        }
        let out = ''
        stream.on('data', (b: Buffer) => {
          out += b.toString()
        })
        stream.stderr.on('data', (b: Buffer) => {
          out += b.toString()
        })
        stream.on('close', () => {
          c.end()
          resolve({ ok: true, out, hostKey })
        })
      })
    })
    c.on('error', (e: Error & { level?: string }) => {
      if (e.level === 'client-authentication') resolve({ ok: false, reason: e.message })
      else reject(e)
    })
    c.connect({
      host: '127.0.0.1',
      port,
      username: 'root',
      ...(typeof password === 'string' ? { password } : password),
      readyTimeout: 30_000,
      tryKeyboard: false,
      hostVerifier: (key: Buffer) => {
        hostKey = sshFingerprint(key)
        return true
      },
    })
  })
}

/** `ssh`, asserting the login works: the command's output and the host key. */
export async function sshOk(
  port: number,
  password: string | { privateKey: string },
  command: string,
): Promise<{ out: string; hostKey: string }> {
  const r = await ssh(port, password, command)
  if (!r.ok) throw new Error(`ssh root@127.0.0.1:${port} refused the password: ${r.reason}`)
  return r
}

export interface ApiAnswer {
  status: number
  body: Record<string, any>
}

/** The Skiff API as the demo user, over plain HTTP. */
export interface VmApi {
  compute(method: string, path: string, body?: unknown): Promise<ApiAnswer>
  image(method: string, path: string, body?: unknown): Promise<ApiAnswer>
  /** Seconds until the server shows `want` with no task (`DELETED`: 404); throws with the last view. */
  waitStatus(id: string, want: string, timeoutMs: number): Promise<number>
  /** The server's forwarded SSH address and host key (`GET /servers/{id}/access`). */
  access(id: string): Promise<{ host: string; port: number; host_key_fingerprint: string | null }>
}

export async function vmApi(skiff: SkiffProcess): Promise<VmApi> {
  const token = await openrcToken(skiff.urls.identity, skiff.openrc.demo)
  const call = async (method: string, url: string, body?: unknown): Promise<ApiAnswer> => {
    const res = await fetch(url, {
      method,
      headers: { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': 'compute 2.1' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} }
  }
  const compute = (method: string, p: string, body?: unknown) => call(method, `${skiff.urls.compute}${p}`, body)
  return {
    compute,
    image: (method, p, body) => call(method, `${skiff.urls.image}${p}`, body),
    async waitStatus(id, want, timeoutMs) {
      const t0 = Date.now()
      let last = ''
      while (Date.now() - t0 < timeoutMs) {
        const r = await compute('GET', `/servers/${id}`)
        if (want === 'DELETED' && r.status === 404) return (Date.now() - t0) / 1000
        const s = r.body.server
        last = `${r.status} ${s?.status} ${s?.['OS-EXT-STS:task_state'] ?? ''} ${JSON.stringify(s?.fault ?? '')}`
        if (s?.status === want && !s?.['OS-EXT-STS:task_state']) return (Date.now() - t0) / 1000
        if (s?.status === 'ERROR' && want !== 'ERROR') break
        await sleep(250)
      }
      throw new Error(`server ${id} did not reach ${want} within ${timeoutMs} ms (last: ${last})\n${skiff.output()}`)
    },
    async access(id) {
      const r = await compute('GET', `/servers/${id}/access`)
      if (r.status !== 200 || !r.body.access?.ssh) throw new Error(`GET /servers/${id}/access: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body.access.ssh
    },
  }
}
