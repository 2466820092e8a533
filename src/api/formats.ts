// String formats shared by every schema validator (Nova's and oslo's meanings). They are the
// only ones: api/ajv.ts gives them to the one Ajv configuration, without ajv-formats.
import { isIPv6 } from 'node:net'

/**
 * oslo's is_uuid_like, which Nova's 'uuid' format is (nova/api/validation/validators.py): after
 * removing every `urn:` and `uuid:`, the braces at either end and every dash, 32 hex digits
 * remain. So dashes are optional (anywhere), any case, `{...}` and `urn:uuid:...` pass.
 */
export function isUuidLike(s: string): boolean {
  const hex = s
    .replaceAll('urn:', '')
    .replaceAll('uuid:', '')
    .replace(/^[{}]+|[{}]+$/g, '')
    .replaceAll('-', '')
  return /^[0-9a-fA-F]{32}$/.test(hex)
}

const NAME = /^(?!\s)[^\p{Cc}]*(?<!\s)$/u
const KEYPAIR_CHARS_20 = '_- 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
const KEYPAIR_CHARS_292 = '@._- 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'

/**
 * Why a keypair name is refused, as Nova's InvalidName says it (its schema is allOf the 'name'
 * format and keypair_name_20 / keypair_name_292: the first that fails speaks); undefined if valid.
 */
export function keypairNameReason(s: string, since292: boolean): string | undefined {
  if (!NAME.test(s)) return 'printable characters. Can not start or end with whitespace.'
  const safe = since292 ? KEYPAIR_CHARS_292 : KEYPAIR_CHARS_20
  for (const c of s) if (!safe.includes(c)) return `Only expected characters: [${safe}]`
  return undefined
}

/** Formats whose failure Nova reports as InvalidName (the whole message, no field prefix). */
export const INVALID_NAME_FORMATS: Record<string, (s: string) => string | undefined> = {
  keypair_name_20: (s) => keypairNameReason(s, false),
  keypair_name_292: (s) => keypairNameReason(s, true),
}

export const FORMATS = {
  uuid: isUuidLike,
  // jsonschema's ipv4 (Python's ipaddress.IPv4Address): four decimal octets, no leading zeros.
  ipv4: /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/,
  // jsonschema's ipv6 (ipaddress.IPv6Address, and no zone such as %eth0).
  ipv6: (s: string) => isIPv6(s) && !s.includes('%'),
  // Nova's 'name' format: printable, no leading or trailing whitespace.
  name: NAME,
  // Nova's az_name: a name without ':' (that separates a zone from a host at server create).
  az_name: (s: string) => NAME.test(s) && !s.includes(':'),
  az_name_with_leading_trailing_spaces: (s: string) => /^[^\p{Cc}]*$/u.test(s) && !s.includes(':'),
  name_with_leading_trailing_spaces: /^[^\p{Cc}]*$/u,
  keypair_name_20: (s: string) => keypairNameReason(s, false) === undefined,
  keypair_name_292: (s: string) => keypairNameReason(s, true) === undefined,
  // Nova's 'regex': a pattern Python's re compiles (JavaScript's, with Python's named groups read as such).
  regex: (s: string) => {
    try {
      new RegExp(s.replaceAll('(?P<', '(?<'))
      return true
    } catch {
      return false
    }
  },
  'date-time': /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/,
}
