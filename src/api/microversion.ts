// Compute API microversions: `OpenStack-API-Version: compute X.Y` (preferred) or the legacy
// `X-OpenStack-Nova-API-Version: X.Y`; absent means the minimum, `latest` the maximum.
import { BadRequest, NotAcceptable } from '../errors.ts'

export interface Microversion {
  major: number
  minor: number
}

/** Only what Skiff implements faithfully is advertised: every shape is exact at each version. */
export const MIN_VERSION: Microversion = { major: 2, minor: 1 }
export const MAX_VERSION: Microversion = { major: 2, minor: 93 }

export const formatVersion = (v: Microversion) => `${v.major}.${v.minor}`
const compare = (a: Microversion, b: Microversion) => a.major - b.major || a.minor - b.minor

/** The version a request asked for, as a string, before range checks (echoed even on 406). */
export function requestedVersion(headers: Record<string, string | string[] | undefined>): string | undefined {
  const modern = headers['openstack-api-version']
  if (modern !== undefined) {
    for (const part of String(modern).split(',')) {
      const [service, version] = part.trim().split(/\s+/)
      if (service?.toLowerCase() === 'compute' && version) return version
    }
    return undefined
  }
  const legacy = headers['x-openstack-nova-api-version']
  return legacy === undefined ? undefined : String(legacy).trim()
}

export function parseMicroversion(raw: string | undefined): Microversion {
  if (raw === undefined) return MIN_VERSION
  if (raw.toLowerCase() === 'latest') return MAX_VERSION
  const m = /^([1-9]\d*)\.(0|[1-9]\d*)$/.exec(raw)
  if (!m) throw new BadRequest(`API Version String ${raw} is of invalid format. Must be of format MajorNum.MinorNum.`)
  const v = { major: Number(m[1]), minor: Number(m[2]) }
  if (compare(v, MIN_VERSION) < 0 || compare(v, MAX_VERSION) > 0) {
    throw new NotAcceptable(
      `Version ${raw} is not supported by the API. Minimum is ${formatVersion(MIN_VERSION)} and maximum is ${formatVersion(MAX_VERSION)}.`,
    )
  }
  return v
}
