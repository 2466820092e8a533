// The channel a restored (warm) rescue system gets its per-rescue secrets over: a virtio-serial
// port (`org.skiff.rescue.0`) whose host side is a unix socket in the rescue VM's directory. The
// saved state holds no secret of anyone's: the guest's agent (guest-image.ts, rcS) waits on the
// port, and after the restore the driver sends what this rescue alone has, line by line:
//   pass <b64>  key <b64> (each)  hostname <b64>  hostkey <b64>  time <epoch s>  seed <b64>
//   apply                 → the guest sets them, restarts its SSH server, answers `applied`
//   disk <serial>         → the guest waits for the hot-added disk, answers `disk <serial> <name>`
//   ready                 → the guest prints its console markers, answers `ready`
// The SSH host key is made here, on the host, not by the guest: every restore starts the guest's
// kernel from the same random state, and a key made from it could repeat. (The kernel is reseeded
// too: a new VM generation id at each restore, and the `seed` line.) Knowing the key also gives
// its fingerprint before any handshake, so the API shows it the moment the server shows RESCUE.
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { sshFingerprint } from './ssh-probe.ts'

/** The virtio-serial port's name the guest's agent looks for. */
export const RESCUE_PORT_NAME = 'org.skiff.rescue.0'

/** An SSH string: uint32 length, then the bytes. */
const sshString = (b: Buffer) => {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(b.length)
  return Buffer.concat([len, b])
}

export interface HostKey {
  /** The private key in dropbear's own file format (what `dropbear -r` reads). */
  dropbear: Buffer
  /** `SHA256:...`, as OpenSSH prints it. */
  fingerprint: string
}

/** A new ed25519 host key: dropbear's file (string "ssh-ed25519", string seed‖public) and its fingerprint. */
export function newHostKey(): HostKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url')
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')
  const type = Buffer.from('ssh-ed25519')
  return {
    dropbear: Buffer.concat([sshString(type), sshString(Buffer.concat([d, x]))]),
    fingerprint: sshFingerprint(Buffer.concat([sshString(type), sshString(x)])),
  }
}

export interface RescueSecrets {
  adminPass: string
  authorizedKeys: string[]
  hostname: string
  hostKey: HostKey
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64')

/** The lines of the secrets message, up to and with `apply`. */
export function secretLines(s: RescueSecrets, nowMs = Date.now()): string[] {
  return [
    `pass ${b64(s.adminPass)}`,
    ...s.authorizedKeys.map((k) => `key ${b64(k.trim())}`),
    `hostname ${b64(s.hostname)}`,
    `hostkey ${b64(s.hostKey.dropbear)}`,
    `time ${Math.floor(nowMs / 1000)}`,
    `seed ${b64(randomBytes(64))}`,
    'apply',
  ]
}

/** One conversation with a restored guest's agent: lines out, answer lines in, each awaited with a deadline. */
export class RescueChannel {
  readonly #sock: Socket
  #buf = ''
  readonly #lines: string[] = []
  #waiter: (() => void) | undefined
  #closed = false

  private constructor(sock: Socket) {
    this.#sock = sock
    sock.setEncoding('utf8')
    sock.on('data', (d: string) => {
      this.#buf += d
      let i
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        this.#lines.push(this.#buf.slice(0, i).trim())
        this.#buf = this.#buf.slice(i + 1)
      }
      this.#waiter?.()
    })
    sock.on('close', () => {
      this.#closed = true
      this.#waiter?.()
    })
    sock.on('error', () => {})
  }

  static connect(socketPath: string, timeoutMs = 5000): Promise<RescueChannel> {
    return new Promise((resolve, reject) => {
      const sock = connect(socketPath)
      const timer = setTimeout(() => {
        sock.destroy()
        reject(new Error(`no connection to the rescue channel ${socketPath} within ${timeoutMs} ms`))
      }, timeoutMs)
      sock.once('connect', () => {
        clearTimeout(timer)
        resolve(new RescueChannel(sock))
      })
      sock.once('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
    })
  }

  /** Send `lines`, then wait for an answer line starting with `expect`. */
  async ask(lines: string[], expect: string, timeoutMs: number): Promise<string> {
    this.#sock.write(lines.map((l) => l + '\n').join(''))
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.#lines.findIndex((l) => l.startsWith(expect))
      if (i >= 0) return this.#lines.splice(0, i + 1).at(-1)!
      if (this.#closed) throw new Error(`the rescue channel closed before the guest answered '${expect}'`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`the guest did not answer '${expect}' within ${Math.round(timeoutMs / 1000)} s`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#waiter = undefined
    }
  }

  close(): void {
    this.#sock.destroy()
  }
}
