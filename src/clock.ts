// Time, injectable so tests can move it.
export interface Clock {
  now(): Date
}
export const systemClock: Clock = { now: () => new Date() }

/** `2026-11-27T20:48:41Z`: Nova's server timestamps. */
export const isoSeconds = (d: Date | string) => new Date(d).toISOString().replace(/\.\d{3}Z$/, 'Z')
/** `2026-11-27T20:47:39.000000`: Nova's instance-action timestamps (no zone). */
export const isoMicrosNoZone = (d: Date | string) => new Date(d).toISOString().replace(/\.(\d{3})Z$/, '.$1000')
/** `2026-11-27T21:56:53.000000Z`: Keystone's token timestamps. */
export const isoMicrosZ = (d: Date | string) => new Date(d).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
