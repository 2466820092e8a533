// A self-signed X.509 client certificate for a generated x509 keypair (nova.crypto
// generate_winrm_x509_cert: a new RSA key, subject /CN=<user_id>, ten years, extendedKeyUsage
// clientAuth, subjectAltName otherName UPN <user_id>@localhost). Node's crypto signs but cannot
// build certificates: the DER is written here. The private key is what Nova gives: `openssl
// pkcs12 -export -password pass:` of the key and the certificate, base64 (one line), in OpenSSL
// 3's default form (RFC 7292: the certificate in a PBES2/AES-256-CBC encryptedData, the key in a
// PBES2 shrouded key bag, both with the certificate's SHA-1 as localKeyID; PBKDF2-HMAC-SHA256 and
// an HMAC-SHA256 MAC, 2048 iterations each), under the empty password.
import { createCipheriv, createHash, createHmac, generateKeyPair, pbkdf2Sync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'

const generateRsaPair = promisify(generateKeyPair)

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}
const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content)
  return Buffer.concat([Buffer.from([tag]), length(body.length), body])
}
const seq = (...c: Buffer[]) => tlv(0x30, ...c)
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'))
const NULL = Buffer.from([0x05, 0x00])

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number)
  const out = [a! * 40 + b!]
  for (const n of rest) {
    const groups: number[] = []
    for (let v = n; ; v = Math.floor(v / 128)) {
      groups.unshift(v % 128)
      if (v < 128) break
    }
    out.push(...groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g)))
  }
  return tlv(0x06, Buffer.from(out))
}

/** A positive INTEGER from big-endian bytes. */
function integer(bytes: Buffer): Buffer {
  let b = bytes
  while (b.length > 1 && b[0] === 0 && b[1]! < 0x80) b = b.subarray(1)
  return tlv(0x02, b[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b)
}

/** RFC 5280: UTCTime through 2049, GeneralizedTime after. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso))
}

const SHA256_WITH_RSA = seq(oid('1.2.840.113549.1.1.11'), NULL)

export async function generateX509Cert(userId: string, now: Date): Promise<{ certificate: string; privateKey: string }> {
  const pair = await generateRsaPair('rsa', { modulusLength: 2048 })
  const name = seq(tlv(0x31, seq(oid('2.5.4.3'), utf8(userId))))
  const notAfter = new Date(now.getTime() + 3650 * 86_400_000)
  const extKeyUsage = seq(oid('2.5.29.37'), tlv(0x04, seq(oid('1.3.6.1.5.5.7.3.2'))))
  const upn = tlv(0xa0, oid('1.3.6.1.4.1.311.20.2.3'), tlv(0xa0, utf8(`${userId}@localhost`)))
  const subjectAltName = seq(oid('2.5.29.17'), tlv(0x04, seq(upn)))
  const serial = randomBytes(16)
  serial[0]! &= 0x7f
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))), // v3
    integer(serial),
    SHA256_WITH_RSA,
    name,
    seq(time(now), time(notAfter)),
    name,
    pair.publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(extKeyUsage, subjectAltName)),
  )
  const signature = sign('sha256', tbs, pair.privateKey)
  const der = seq(tbs, SHA256_WITH_RSA, tlv(0x03, Buffer.from([0]), signature))
  const b64 = der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')
  return {
    certificate: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    privateKey: pkcs12(pair.privateKey, der, '').toString('base64'),
  }
}

const ITERATIONS = 2048
const octets = (b: Buffer) => tlv(0x04, b)
const explicit0 = (...c: Buffer[]) => tlv(0xa0, ...c)
const set = (...c: Buffer[]) => tlv(0x31, ...c)
const small = (n: number) => integer(Buffer.from([n >> 8, n & 0xff]))
const DATA = '1.2.840.113549.1.7.1'

/** PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018), as OpenSSL 3 writes it: the algorithm and the ciphertext. */
function pbes2(password: string, plain: Buffer): { algorithm: Buffer; encrypted: Buffer } {
  const salt = randomBytes(8)
  const iv = randomBytes(16)
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, ITERATIONS, 32, 'sha256')
  const cipher = createCipheriv('aes-256-cbc', key, iv)
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()])
  const kdf = seq(oid('1.2.840.113549.1.5.12'), seq(octets(salt), small(ITERATIONS), seq(oid('1.2.840.113549.2.9'), NULL)))
  const algorithm = seq(oid('1.2.840.113549.1.5.13'), seq(kdf, seq(oid('2.16.840.1.101.3.4.1.42'), octets(iv))))
  return { algorithm, encrypted }
}

/** RFC 7292 appendix B.2: the PKCS#12 key derivation (SHA-256, 64-byte blocks); the password as a NUL-terminated BMPString. */
function pkcs12Kdf(password: string, salt: Buffer, id: number, iterations: number, n: number): Buffer {
  const u = 32,
    v = 64
  const bmp = Buffer.alloc((password.length + 1) * 2)
  for (let i = 0; i < password.length; i++) bmp.writeUInt16BE(password.charCodeAt(i), i * 2)
  const fill = (b: Buffer) => {
    const out = Buffer.alloc(v * Math.ceil(b.length / v))
    for (let i = 0; i < out.length; i++) out[i] = b[i % b.length]!
    return out
  }
  const I = Buffer.concat([fill(salt), fill(bmp)])
  const D = Buffer.alloc(v, id)
  const out: Buffer[] = []
  for (let got = 0; got < n; got += u) {
    let A = createHash('sha256').update(D).update(I).digest()
    for (let r = 1; r < iterations; r++) A = createHash('sha256').update(A).digest()
    out.push(A)
    const B = fill(A)
    // Each v-byte block of I becomes I_j + B + 1, modulo 2^(8v).
    for (let j = 0; j < I.length; j += v) {
      let carry = 1
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry
        I[j + k] = sum & 0xff
        carry = sum >> 8
      }
    }
  }
  return Buffer.concat(out).subarray(0, n)
}

/** A PKCS#12 PFX of the key and its certificate, as `openssl pkcs12 -export` (OpenSSL 3's defaults) writes it. */
export function pkcs12(privateKey: KeyObject, certificateDer: Buffer, password: string): Buffer {
  const localKeyId = set(seq(oid('1.2.840.113549.1.9.21'), set(octets(createHash('sha1').update(certificateDer).digest()))))
  const certBag = seq(
    oid('1.2.840.113549.1.12.10.1.3'),
    explicit0(seq(oid('1.2.840.113549.1.9.22.1'), explicit0(octets(certificateDer)))),
    localKeyId,
  )
  const certs = pbes2(password, seq(certBag))
  const encryptedData = seq(
    oid('1.2.840.113549.1.7.6'),
    explicit0(seq(small(0), seq(oid(DATA), certs.algorithm, tlv(0x80, certs.encrypted)))),
  )
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' })
  const shrouded = pbes2(password, pkcs8)
  const keyBag = seq(oid('1.2.840.113549.1.12.10.1.2'), explicit0(seq(shrouded.algorithm, octets(shrouded.encrypted))), localKeyId)
  const keyData = seq(oid(DATA), explicit0(octets(seq(keyBag))))
  const authSafe = seq(encryptedData, keyData)
  const macSalt = randomBytes(8)
  const macKey = pkcs12Kdf(password, macSalt, 3, ITERATIONS, 32)
  const mac = createHmac('sha256', macKey).update(authSafe).digest()
  const macData = seq(seq(seq(oid('2.16.840.1.101.3.4.2.1'), NULL), octets(mac)), octets(macSalt), small(ITERATIONS))
  return seq(small(3), seq(oid(DATA), explicit0(octets(authSafe))), macData)
}
