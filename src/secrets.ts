// Sealing of secrets that must travel through the database (a password handed from the API to
// the agent in a task): AES-256-GCM under a key kept in a file beside the database (mode 0600),
// so a copy of the database alone reveals nothing. Every agent of a deployment needs the file.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

const CANARY = 'skiff sealing canary'

/** This process's key cannot open what the database holds. */
export class SealingKeyMismatch extends Error {}

export class Sealer {
  readonly #key: Buffer

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('a sealing key has 32 bytes')
    this.#key = key
  }

  /**
   * The deployment's key: the file `--secret-key-file` names (it must exist), else
   * `<dataDir>/secret.key`, created at first start. `source` names it in messages.
   */
  static load(dataDir: string, keyFile: string | undefined): { sealer: Sealer; source: string } {
    if (keyFile === undefined) return { sealer: Sealer.fromDataDir(dataDir), source: path.resolve(dataDir, 'secret.key') }
    let text: string
    try {
      text = readFileSync(keyFile, 'utf8')
    } catch (err) {
      throw new Error(
        `cannot read the sealing key --secret-key-file ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      )
    }
    const key = Buffer.from(text.trim(), 'base64')
    if (key.length !== 32)
      throw new Error(`--secret-key-file ${keyFile} does not hold a sealing key (32 bytes in base64, as <data-dir>/secret.key)`)
    return { sealer: new Sealer(key), source: path.resolve(keyFile) }
  }

  /**
   * Refuse a key that is not the deployment's: `canary` is what the first process sealed with
   * its key (deployment-repo.ts); this key must open it.
   */
  assertOpens(canary: string, source: string): void {
    let ok = false
    try {
      ok = this.open(canary) === CANARY
    } catch {
      /* another key: the tag does not match */
    }
    if (!ok)
      throw new SealingKeyMismatch(
        `the sealing key in ${source} does not match this deployment's (copy secret.key from the first host, or pass --secret-key-file)`,
      )
  }

  /** A new canary for assertOpens. */
  canary(): string {
    return this.seal(CANARY)
  }

  /** The key in `<dataDir>/secret.key`, created at first start. */
  static fromDataDir(dataDir: string): Sealer {
    const file = path.join(dataDir, 'secret.key')
    if (!existsSync(file)) {
      mkdirSync(dataDir, { recursive: true })
      writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' })
      chmodSync(file, 0o600)
    }
    return new Sealer(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'))
  }

  /**
   * An HMAC-SHA256 of `text` under a key derived from this one for `purpose` (never the sealing
   * key itself): proof between processes of the deployment that a message comes from one of them.
   */
  mac(purpose: string, text: string): Buffer {
    const key = Buffer.from(hkdfSync('sha256', this.#key, Buffer.alloc(0), purpose, 32))
    return createHmac('sha256', key).update(text).digest()
  }

  seal(value: unknown): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    const data = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()])
    return ['v1', iv.toString('base64'), cipher.getAuthTag().toString('base64'), data.toString('base64')].join(':')
  }

  open<T = unknown>(sealed: string): T {
    const [version, iv, tag, data] = sealed.split(':')
    if (version !== 'v1' || !iv || !tag || data === undefined) throw new Error('not a sealed value')
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64'))
    decipher.setAuthTag(Buffer.from(tag, 'base64'))
    return JSON.parse(Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8')) as T
  }
}
