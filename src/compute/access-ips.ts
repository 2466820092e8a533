// accessIPv4/accessIPv6 as Nova stores them: its Instance fields are netaddr addresses, so
// what clients read back is the canonical text, e.g. "0::babe:220.12.22.2" -> "::babe:dc0c:1602".
import { isIPv6 } from 'node:net'

/** The canonical (RFC 5952) text of an IPv6 address, as netaddr prints it. */
export function canonicalIPv6(address: string): string {
  if (!isIPv6(address)) return address
  // The WHATWG URL parser compresses IPv6 hosts exactly as RFC 5952 says.
  const host = new URL(`http://[${address}]/`).hostname.slice(1, -1)
  // netaddr keeps the dotted tail of IPv4-mapped addresses.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host)
  if (!mapped) return host
  const hi = parseInt(mapped[1]!, 16),
    lo = parseInt(mapped[2]!, 16)
  return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}
