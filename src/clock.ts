// Time, injectable so tests can move it.
export interface Clock {
  now(): Date
  /**
   * Tests only: a clock the test moves calls `listener` when moved, so that work waiting for time
   * to pass (the rescue expiry sweep) runs at once rather than at its next real tick.
   */
  onAdvance?(listener: () => Promise<unknown>): () => void
}
export const systemClock: Clock = { now: () => new Date() }

// Stored timestamps are already `toISOString()` text (24 characters): slice them, which is a
// hundred times cheaper than parsing again (it shows on list pages of many servers).
const iso = (d: Date | string) => (typeof d === 'string' && d.length === 24 && d.endsWith('Z') ? d : new Date(d).toISOString())

/** `2026-11-27T20:48:41Z`: Nova's server timestamps. */
export const isoSeconds = (d: Date | string) => `${iso(d).slice(0, 19)}Z`
/** `2026-11-27T20:47:39.000000`: Nova's instance-action timestamps (no zone). */
export const isoMicrosNoZone = (d: Date | string) => `${iso(d).slice(0, 23)}000`
/** `2026-11-27T21:56:53.000000Z`: Keystone's token timestamps. */
export const isoMicrosZ = (d: Date | string) => `${iso(d).slice(0, 23)}000Z`
