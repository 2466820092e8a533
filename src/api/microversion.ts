// Compute API microversions: `OpenStack-API-Version: compute X.Y` (preferred) or the legacy
// `X-OpenStack-Nova-API-Version: X.Y`; absent means the minimum, `latest` the maximum.
import { BadRequest, NotAcceptable } from '../errors.ts'

export interface Microversion {
  major: number
  minor: number
}

/** Nova Zed's range (nova/api/openstack/api_version_request.py: _MIN_API_VERSION, _MAX_API_VERSION). */
export const MIN_VERSION: Microversion = { major: 2, minor: 1 }
export const MAX_VERSION: Microversion = { major: 2, minor: 93 }

export const formatVersion = (v: Microversion) => `${v.major}.${v.minor}`
const compare = (a: Microversion, b: Microversion) => a.major - b.major || a.minor - b.minor

const header = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v)

/**
 * The version a request asked for, as microversion_parse.get_version finds it: the last
 * `compute <version>` of OpenStack-API-Version, else the last value of the legacy header.
 */
export function requestedVersion(headers: Record<string, string | string[] | undefined>): string | undefined {
  const modern = header(headers['openstack-api-version'])
  if (modern !== undefined) {
    for (const part of modern.split(',').reverse()) {
      const m = /^(\S+)\s+(.+)$/.exec(part.trim())
      // An empty version is no version: the legacy header is looked at next.
      if (m && m[1]!.toLowerCase() === 'compute' && m[2]!.trim()) return m[2]!.trim()
    }
  }
  const legacy = header(headers['x-openstack-nova-api-version'])
  return legacy === undefined ? undefined : legacy.split(',').pop()!.trim()
}

/** Nova's APIVersionRequest: `latest` (exactly) is the maximum; else MajorNum.MinorNum within the range. */
export function parseMicroversion(raw: string | undefined): Microversion {
  if (raw === undefined) return MIN_VERSION
  if (raw === 'latest') return MAX_VERSION
  const m = /^([1-9]\d*)\.([1-9]\d*|0)$/.exec(raw)
  if (!m) throw new BadRequest(`API Version String ${raw} is of invalid format. Must be of format MajorNum.MinorNum.`)
  const v = { major: Number(m[1]), minor: Number(m[2]) }
  if (compare(v, MIN_VERSION) < 0 || compare(v, MAX_VERSION) > 0) {
    throw new NotAcceptable(
      `Version ${formatVersion(v)} is not supported by the API. Minimum is ${formatVersion(MIN_VERSION)} and maximum is ${formatVersion(MAX_VERSION)}.`,
    )
  }
  return v
}
