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

export const FORMATS = {
  uuid: isUuidLike,
  // jsonschema's ipv4 (Python's ipaddress.IPv4Address): four decimal octets, no leading zeros.
  ipv4: /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/,
  // jsonschema's ipv6 (ipaddress.IPv6Address, and no zone such as %eth0).
  ipv6: (s: string) => isIPv6(s) && !s.includes('%'),
  // Nova's 'name' format: printable, no leading or trailing whitespace.
  name: /^(?!\s)[^\p{Cc}]*(?<!\s)$/u,
  'date-time': /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/,
}
