// OpenSSH public keys and their MD5 fingerprints (what Nova shows), computed with node:crypto
// so the tests can check a key pair without ssh-keygen.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'

const sshString = (b: Buffer) => {
  const len = Buffer.alloc(4)
  len.writeUInt32BE(b.length)
  return Buffer.concat([len, b])
}
/** RFC 4251 mpint: big-endian, a leading zero byte when the high bit is set. */
const mpint = (b: Buffer) => {
  let i = 0
  while (i < b.length - 1 && b[i] === 0) i++
  const v = b.subarray(i)
  return sshString(v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v)
}

/** The OpenSSH wire blob of a public key (RSA or Ed25519), from a PEM private or public key. */
export function sshBlobFromPem(pem: string): Buffer {
  const key = createPublicKey(pem.includes('PRIVATE KEY') ? createPrivateKey(pem) : pem)
  const jwk = key.export({ format: 'jwk' })
  if (jwk.kty === 'RSA') {
    return Buffer.concat([
      sshString(Buffer.from('ssh-rsa')),
      mpint(Buffer.from(jwk.e!, 'base64url')),
      mpint(Buffer.from(jwk.n!, 'base64url')),
    ])
  }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    return Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(Buffer.from(jwk.x!, 'base64url'))])
  }
  throw new Error(`unsupported key type ${jwk.kty}`)
}

/** Nova's fingerprint: MD5 of the blob, colon-separated hex (`ssh-keygen -E md5 -l` without "MD5:"). */
export function md5Fingerprint(blob: Buffer): string {
  return createHash('md5').update(blob).digest('hex').match(/../g)!.join(':')
}

/** The blob inside an OpenSSH public key line `type BASE64 [comment]`. */
export function blobOfPublicKeyLine(line: string): Buffer {
  const b64 = line.trim().split(/\s+/)[1]
  if (!b64) throw new Error(`not an OpenSSH public key: ${line}`)
  return Buffer.from(b64, 'base64')
}

/** A fresh Ed25519 key as an OpenSSH public key line, with its fingerprint. */
export function newEd25519PublicKey(comment: string): { line: string; fingerprint: string } {
  const { publicKey } = generateKeyPairSync('ed25519')
  const blob = sshBlobFromPem(publicKey.export({ format: 'pem', type: 'spki' }).toString())
  return { line: `ssh-ed25519 ${blob.toString('base64')} ${comment}`, fingerprint: md5Fingerprint(blob) }
}
