// Rescue proven by logging in: a real `skiff serve --driver qemu`, real VMs, SSH with ssh2.
// create → SSH with the create password, write a file; rescue with a password → SSH with it
// (the original refused), the file is on the second disk, the host key differs; unrescue →
// the original password, the file, the original host key; delete → no QEMU, no files.
// Skipped where QEMU and the guest packages are absent, except in CI (.ci/run installs them).
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { Client } from 'ssh2'
import { guestSkipReason } from '../helpers/qemu.ts'
import { parseOpenrc, startSkiffProcess, type SkiffProcess } from './helpers/skiff-process.ts'

const skip = guestSkipReason()

/** Pids of QEMU processes whose command line mentions `needle`. */
function qemuPids(needle: string): number[] {
  const pids: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    const cmd = (() => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8') } catch { return '' } })()
    if (cmd.startsWith('qemu-system') && cmd.includes(needle)) pids.push(Number(p))
  }
  return pids
}

interface SshResult { ok: true; out: string; hostKey: string }
/** Log in as root with `password`, run `command`; `{ok: false}` when authentication fails. */
function ssh(port: number, password: string, command: string): Promise<SshResult | { ok: false; reason: string }> {
  return new Promise((resolve, reject) => {
    const c = new Client()
    let hostKey = ''
    c.on('ready', () => {
      c.exec(command, (err, stream) => {
        if (err) { c.end(); return reject(err) }
        let out = ''
        stream.on('data', (b: Buffer) => { out += b.toString() })
        stream.stderr.on('data', (b: Buffer) => { out += b.toString() })
        stream.on('close', () => { c.end(); resolve({ ok: true, out, hostKey }) })
      })
    })
    c.on('error', (e: Error & { level?: string }) => {
      if (e.level === 'client-authentication') resolve({ ok: false, reason: e.message })
      else reject(e)
    })
    c.connect({
      host: '127.0.0.1', port, username: 'root', password, readyTimeout: 30_000, tryKeyboard: false,
      hostVerifier: (key: Buffer) => { hostKey = 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, ''); return true },
    })
  })
}

describe('qemu driver: rescue proven by logging in', { skip, timeout: 15 * 60_000 }, () => {
  let skiff: SkiffProcess
  let token = ''
  let qemuDir = ''
  const figures: Record<string, string> = {}

  const api = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(url, { method, headers: { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': 'compute 2.1' }, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) as Record<string, any> : {} }
  }
  const compute = (method: string, p: string, body?: unknown) => api(method, `${skiff.urls.compute}${p}`, body)
  async function waitStatus(id: string, want: string, timeoutMs: number): Promise<number> {
    const t0 = Date.now()
    let last = ''
    while (Date.now() - t0 < timeoutMs) {
      const r = await compute('GET', `/servers/${id}`)
      if (want === 'DELETED' && r.status === 404) return (Date.now() - t0) / 1000
      last = `${r.status} ${r.body.server?.status} ${r.body.server?.['OS-EXT-STS:task_state'] ?? ''} ${JSON.stringify(r.body.server?.fault ?? '')}`
      if (r.body.server?.status === want && !r.body.server?.['OS-EXT-STS:task_state']) return (Date.now() - t0) / 1000
      if (r.body.server?.status === 'ERROR') break
      await sleep(250)
    }
    throw new Error(`server ${id} did not reach ${want} within ${timeoutMs} ms (last: ${last})\n${skiff.output()}`)
  }

  before(async () => {
    const t0 = Date.now()
    skiff = await startSkiffProcess({ startTimeoutMs: 180_000, extraArgs: ['--driver', 'qemu', '--qemu-ssh-ports', '23100-23199', '--log-level', 'info'] })
    figures['first start (guest build, accelerator probe)'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`
    qemuDir = path.join(skiff.dataDir, 'qemu')
    const rc = parseOpenrc(readFileSync(skiff.openrc.demo, 'utf8'))
    const res = await fetch(`${skiff.urls.identity}/auth/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: rc.OS_USERNAME, domain: { name: 'Default' }, password: rc.OS_PASSWORD } } }, scope: { project: { name: rc.OS_PROJECT_NAME, domain: { name: 'Default' } } } } }),
    })
    assert.equal(res.status, 201)
    token = res.headers.get('x-subject-token')!
  })

  after(async () => {
    // Whatever failed, no VM outlives the test.
    if (qemuDir) for (const pid of qemuPids(qemuDir)) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    await skiff?.stop()
    console.log(Object.entries(figures).map(([k, v]) => `# ${k}: ${v}`).join('\n'))
  })

  test('create, log in, rescue, log in to the rescue system, unrescue, delete', async () => {
    const images = await api('GET', `${skiff.urls.image}/v2/images?name=skiff-base`)
    const imageRef = images.body.images[0].id as string
    assert.equal(images.body.images[0].disk_format, 'qcow2')
    const p1 = `P1-${randomBytes(6).toString('hex')}`
    const marker = `marker-${randomBytes(6).toString('hex')}`

    const created = await compute('POST', '/servers', { server: { name: 'vm one', imageRef, flavorRef: '1', adminPass: p1 } })
    assert.equal(created.status, 202, JSON.stringify(created.body))
    const id = created.body.server.id as string
    figures['create to ACTIVE (boot to SSH)'] = `${(await waitStatus(id, 'ACTIVE', 240_000)).toFixed(1)} s`

    const access = (await compute('GET', `/servers/${id}/access`)).body.access.ssh as { host: string; port: number; host_key_fingerprint: string }
    assert.equal(access.host, '127.0.0.1')
    assert.match(access.host_key_fingerprint, /^SHA256:/)
    const own = await ssh(access.port, p1, `echo ${marker} > /root/marker && sync && cat /root/marker`)
    assert.ok(own.ok, 'login with the create password')
    assert.equal(own.out.trim(), marker)
    assert.equal(own.hostKey, access.host_key_fingerprint, 'the host key Skiff shows is the one SSH presents')

    // Rescue with a chosen password.
    const p2 = `P2-${randomBytes(6).toString('hex')}`
    let t = Date.now()
    const rescue = await compute('POST', `/servers/${id}/action`, { rescue: { adminPass: p2 } })
    assert.equal(rescue.status, 200, JSON.stringify(rescue.body))
    assert.equal(rescue.body.adminPass, p2)
    await waitStatus(id, 'RESCUE', 240_000)
    figures['rescue (to RESCUE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const inRescue = (await compute('GET', `/servers/${id}/access`)).body.access.ssh as typeof access
    assert.equal(inRescue.port, access.port, 'the same address through rescue')
    assert.notEqual(inRescue.host_key_fingerprint, access.host_key_fingerprint, 'the host key differs in rescue')
    const refused = await ssh(access.port, p1, 'true')
    assert.equal(refused.ok, false, 'the original password is refused by the rescue system')
    const look = await ssh(access.port, p2, 'cat /sys/block/vdb/serial; echo; mkdir -p /mnt/vdb && mount /dev/vdb /mnt/vdb && cat /mnt/vdb/root/marker; umount /mnt/vdb')
    assert.ok(look.ok, 'login with the rescue password')
    assert.deepEqual(look.out.trim().split('\n'), ['vdb', marker], 'the server disk, with the file, is the second disk')
    assert.equal(look.hostKey, inRescue.host_key_fingerprint)

    // Unrescue: the server's own disk, password and host key.
    t = Date.now()
    assert.equal((await compute('POST', `/servers/${id}/action`, { unrescue: null })).status, 202)
    await waitStatus(id, 'ACTIVE', 240_000)
    figures['unrescue (to ACTIVE, SSH up)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`
    const back = await ssh(access.port, p1, 'cat /root/marker')
    assert.ok(back.ok, 'the original password works again')
    assert.equal(back.out.trim(), marker)
    assert.equal(back.hostKey, access.host_key_fingerprint, 'the original host key is back')
    assert.equal((await ssh(access.port, p2, 'true')).ok, false, 'the rescue password no longer works')
    const consoleLog = await compute('POST', `/servers/${id}/action`, { 'os-getConsoleOutput': { length: 50 } })
    assert.match(consoleLog.body.output, /GUEST-READY/)
    assert.doesNotMatch(consoleLog.body.output, new RegExp(`${p1}|${p2}`))

    // Delete: no QEMU process, no files.
    assert.equal((await compute('DELETE', `/servers/${id}`)).status, 204)
    await waitStatus(id, 'DELETED', 60_000)
    assert.deepEqual(qemuPids(id), [])
    assert.equal(existsSync(path.join(qemuDir, 's', id)), false)
  })
})
