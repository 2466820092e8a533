// A self-signed X.509 client certificate for a generated x509 keypair (nova.crypto
// generate_winrm_x509_cert: a new RSA key, subject /CN=<user_id>, ten years, extendedKeyUsage
// clientAuth, subjectAltName otherName UPN <user_id>@localhost). Node's crypto signs but cannot
// build certificates: the DER is written here. Nova returns the private key as a base64 PKCS#12
// bundle; Skiff returns it as a PKCS#8 PEM.
import { generateKeyPair, randomBytes, sign } from 'node:crypto'
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
    privateKey: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  }
}
