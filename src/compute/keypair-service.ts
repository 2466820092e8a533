// Keypairs: generated (RSA, with the private key returned once) or imported, per user.
import { generateX509Cert } from './x509-cert.ts'
import type { QuotaService } from './quota-service.ts'
import { createHash, generateKeyPair, X509Certificate } from 'node:crypto'
import { promisify } from 'node:util'
import type { Clock } from '../clock.ts'
import { BadRequest, Conflict, Forbidden } from '../errors.ts'
import type { KeypairsRepo } from '../store/keypairs-repo.ts'
import type { KeypairRow } from '../store/schema.ts'
import { KeypairNotFound } from './errors.ts'

export type Keypair = KeypairRow

const generateRsaPair = promisify(generateKeyPair)

const KEY_TYPES = ['ssh-rsa', 'ssh-ed25519', 'ssh-dss', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521']

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(b.length)
  return Buffer.concat([len, b])
}

/** An mpint: big-endian, with a leading zero when the top bit is set. */
function mpint(b: Buffer): Buffer {
  return sshString(b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b)
}

/** Parse `type base64 [comment]`; the blob must name the same type. */
export function parsePublicKey(text: string): { type: string; blob: Buffer } {
  const parts = text.trim().split(/\s+/)
  const [type, b64] = parts
  if (!type || !b64 || !KEY_TYPES.includes(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new BadRequest('Keypair data is invalid: failed to generate fingerprint')
  }
  const blob = Buffer.from(b64, 'base64')
  const nameLen = blob.length >= 4 ? blob.readUInt32BE(0) : -1
  if (nameLen !== type.length || blob.subarray(4, 4 + nameLen).toString() !== type) {
    throw new BadRequest('Keypair data is invalid: failed to generate fingerprint')
  }
  return { type, blob }
}

/** Nova's fingerprint: MD5 of the key blob, colon-separated hex. */
export const fingerprint = (blob: Buffer) => createHash('md5').update(blob).digest('hex').match(/../g)!.join(':')

/** nova.crypto.generate_x509_fingerprint: SHA-1 of the certificate, lowercase, colon-separated. */
function x509Fingerprint(pem: string): string {
  try {
    return new X509Certificate(pem).fingerprint.toLowerCase()
  } catch (e) {
    throw new BadRequest(`Keypair data is invalid: failed to generate X509 fingerprint. Error message: ${(e as Error).message}`)
  }
}

export class KeypairService {
  readonly #repo: KeypairsRepo
  readonly #clock: Clock
  readonly #quotas: Pick<QuotaService, 'limit'>

  constructor(repo: KeypairsRepo, clock: Clock, quotas: Pick<QuotaService, 'limit'>) {
    this.#repo = repo
    this.#clock = clock
    this.#quotas = quotas
  }

  /** By name; from a marker (a name of the user's, else Nova's 400) and at most `limit`. */
  async list(userId: string, page: { limit?: number; marker?: string } = {}): Promise<KeypairRow[]> {
    if (page.marker !== undefined && !(await this.#repo.find(userId, page.marker))) {
      throw new BadRequest(`Marker ${page.marker} could not be found.`)
    }
    return this.#repo.list(userId, page)
  }

  async get(userId: string, name: string): Promise<KeypairRow> {
    const k = await this.#repo.find(userId, name)
    if (!k) throw new KeypairNotFound(userId, name)
    return k
  }

  async find(userId: string, name: string): Promise<KeypairRow | undefined> {
    return this.#repo.find(userId, name)
  }

  /** Import `publicKey`, or generate an RSA pair and return its private key (never stored). */
  async create(
    userId: string,
    name: string,
    publicKey?: string,
    type: 'ssh' | 'x509' = 'ssh',
    projectId: string = '',
  ): Promise<{ row: KeypairRow; privateKey?: string }> {
    let privateKey: string | undefined
    let fp: string
    // Nova checks the quota first (KeypairAPI._check_key_pair_quotas): the user's key_pairs limit in the project.
    const allowed = await this.#quotas.limit(projectId, userId, 'key_pairs')
    if (allowed >= 0 && (await this.#repo.count(userId)) >= allowed) throw new Forbidden('Quota exceeded, too many key pairs.')
    if (publicKey === undefined && type === 'x509') {
      // nova.crypto.generate_winrm_x509_cert: a self-signed certificate for the user.
      const cert = await generateX509Cert(userId, this.#clock.now())
      publicKey = cert.certificate
      privateKey = cert.privateKey
      fp = x509Fingerprint(publicKey)
    } else if (publicKey === undefined) {
      // Generated off the event loop: an RSA key takes tens of milliseconds of CPU.
      const pair = await generateRsaPair('rsa', { modulusLength: 2048 })
      const jwk = pair.publicKey.export({ format: 'jwk' })
      const blob = Buffer.concat([
        sshString(Buffer.from('ssh-rsa')),
        mpint(Buffer.from(jwk.e!, 'base64url')),
        mpint(Buffer.from(jwk.n!, 'base64url')),
      ])
      publicKey = `ssh-rsa ${blob.toString('base64')} Generated-by-Skiff`
      privateKey = pair.privateKey.export({ format: 'pem', type: 'pkcs1' }).toString()
      fp = fingerprint(blob)
    } else if (type === 'x509') {
      fp = x509Fingerprint(publicKey)
    } else {
      fp = fingerprint(parsePublicKey(publicKey).blob)
    }
    if (await this.find(userId, name)) throw new Conflict(`Key pair '${name}' already exists.`)
    const row: KeypairRow = {
      user_id: userId,
      name,
      type,
      public_key: type === 'x509' ? publicKey : publicKey.trim(),
      fingerprint: fp,
      created_at: this.#clock.now().toISOString(),
    }
    try {
      await this.#repo.insert(row)
    } catch {
      // Two creates raced: the primary key decided.
      throw new Conflict(`Key pair '${name}' already exists.`)
    }
    return privateKey === undefined ? { row } : { row, privateKey }
  }

  async delete(userId: string, name: string): Promise<void> {
    if (!(await this.#repo.delete(userId, name))) throw new KeypairNotFound(userId, name)
  }
}
