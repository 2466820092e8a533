// An agent's copy of image data, for drivers that need a local file (the qemu driver builds its
// qcow2 overlays on one): `<dir>/<os_hash_value or checksum>`, filled from the image store at
// first use. Keyed by checksum, so two images of the same bytes share a file and a file never
// holds other bytes than its name says; images are immutable once active, so it never goes stale.
// It is pruned to a size cap (least recently used first) after each fetch: never a file that a
// server of this host boots from (its image, its rescue image, their kernel and ramdisk), nor one
// being fetched.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, rename, stat, utimes } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import type { ImageRow } from '../store/schema.ts'
import { removeFile, type ImageStore } from './image-store.ts'

export class ImageCacheError extends Error {}

export interface ImageCacheOptions {
  /** Largest total size of the cached files, bytes; above it the least recently used go. 0: no cap. */
  maxBytes?: number
  /**
   * Cache keys (an image's os_hash_value, else its checksum) that servers of this host boot from:
   * never pruned, whatever the cap. Asked only when the cache is over its cap.
   */
  inUse?: () => Promise<Iterable<string>>
  /** A prune that failed (the fetch that ran it has its file all the same). */
  onPruneError?: (err: unknown) => void
}

/** A cached file, as prune() sees it. */
interface Entry {
  name: string
  size: number
  /** Last use: fileOf() sets the access time at each hit (the modification time stays, see fileOf). */
  usedMs: number
}

export class ImageCache {
  readonly #dir: string
  readonly #store: ImageStore
  readonly #o: ImageCacheOptions
  /** Fetches under way in this process, by file: a second caller waits for the first one's. */
  readonly #fetching = new Map<string, Promise<string>>()
  /** One prune at a time. */
  #pruning: Promise<string[]> = Promise.resolve([])

  constructor(dir: string, store: ImageStore, options: ImageCacheOptions = {}) {
    this.#dir = dir
    this.#store = store
    this.#o = options
  }

  /** A local file with the data of `row` (an active image). */
  async fileOf(row: ImageRow): Promise<string> {
    // The file store on this host: its file is already whole and never rewritten (no copy).
    const local = this.#store.localPath(row.id)
    if (local !== undefined) return local
    const key = row.os_hash_value ?? row.checksum
    // Never a path from a value that is not a hex digest (the name is a file name under #dir).
    if (!key || !/^[0-9a-f]+$/.test(key)) throw new ImageCacheError(`image ${row.id} has no checksum to cache it by`)
    const file = path.join(this.#dir, key)
    const st = await stat(file).catch(() => undefined)
    if (st?.isFile()) {
      // Used now: the access time orders the prune (relatime would update it once a day at most).
      // The modification time stays: the qemu driver names its links to this file after it.
      await utimes(file, new Date(), st.mtime).catch(() => {})
      return file
    }
    let fetching = this.#fetching.get(file)
    if (!fetching) {
      fetching = this.#fetch(row, file).finally(() => this.#fetching.delete(file))
      this.#fetching.set(file, fetching)
      // The cache grew: back under its cap (the new file is in use by whoever asked for it).
      void fetching.then(
        () => this.prune([key]).catch((err: unknown) => this.#o.onPruneError?.(err)),
        () => {},
      )
    }
    return fetching
  }

  /**
   * Remove the least recently used files until the cache is within its cap, except `keep`, the
   * files being fetched and those `inUse` names. The files it removed.
   */
  prune(keep: string[] = []): Promise<string[]> {
    const run = this.#pruning.then(
      () => this.#prune(keep),
      () => this.#prune(keep),
    )
    this.#pruning = run
    return run
  }

  async #prune(keep: string[]): Promise<string[]> {
    const max = this.#o.maxBytes ?? 0
    if (max <= 0) return []
    const entries: Entry[] = []
    const names = await readdir(this.#dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return []
      throw err
    })
    for (const name of names) {
      // Only finished files (a digest for a name), not the temp files of fetches under way.
      if (!/^[0-9a-f]+$/.test(name)) continue
      const st = await stat(path.join(this.#dir, name)).catch(() => undefined)
      if (st?.isFile()) entries.push({ name, size: st.size, usedMs: Math.max(st.atimeMs, st.mtimeMs) })
    }
    let total = entries.reduce((sum, e) => sum + e.size, 0)
    if (total <= max) return []
    const spared = new Set([...keep, ...[...this.#fetching.keys()].map((f) => path.basename(f)), ...((await this.#o.inUse?.()) ?? [])])
    const removed: string[] = []
    for (const e of entries.filter((x) => !spared.has(x.name)).sort((a, b) => a.usedMs - b.usedMs)) {
      if (total <= max) break
      await removeFile(path.join(this.#dir, e.name))
      total -= e.size
      removed.push(path.join(this.#dir, e.name))
    }
    return removed
  }

  /**
   * Into a temp file of its own, verified, then renamed: another process fetching the same image
   * writes its own temp file, and whichever rename comes last puts the same bytes in place.
   */
  async #fetch(row: ImageRow, file: string): Promise<string> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const stream = await this.#store.get(row.id, row.size ?? 0)
    if (!stream) throw new ImageCacheError(`image ${row.id}: no data in the image store`)
    const tmp = path.join(this.#dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
    const sha512 = createHash('sha512')
    const md5 = createHash('md5')
    let size = 0
    const fh = await open(tmp, 'wx', 0o600)
    try {
      try {
        await fh.chmod(0o600)
        await pipeline(
          stream,
          new Writable({
            write(chunk: Buffer, _enc, done) {
              sha512.update(chunk)
              md5.update(chunk)
              size += chunk.length
              void (async () => {
                for (let off = 0; off < chunk.length;) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten
              })().then(() => done(), done)
            },
          }),
        )
        await fh.sync()
      } finally {
        await fh.close()
      }
      const got = { size, checksum: md5.digest('hex'), os_hash_value: sha512.digest('hex') }
      const bad = (['size', 'checksum', 'os_hash_value'] as const).filter((k) => row[k] !== null && row[k] !== got[k])
      if (bad.length > 0) {
        throw new ImageCacheError(`image ${row.id}: the data read from the image store does not match its ${bad.join(', ')}`)
      }
      await rename(tmp, file)
      // Its last use is now, on the clock a hit uses (the file system's own timestamps are
      // coarser: a file fetched just after a hit could otherwise look used before it).
      const st = await stat(file)
      await utimes(file, new Date(), st.mtime)
      return file
    } catch (e) {
      await removeFile(tmp)
      throw e
    }
  }
}
