// An agent's copy of image data, for drivers that need a local file (the qemu driver builds its
// qcow2 overlays on one): `<dir>/<os_hash_value or checksum>`, filled from the image store at
// first use. Keyed by checksum, so two images of the same bytes share a file and a file never
// holds other bytes than its name says; images are immutable once active, so it never goes stale.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, rename, stat } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import type { ImageRow } from '../store/schema.ts'
import { removeFile, type ImageStore } from './image-store.ts'

export class ImageCacheError extends Error {}

export class ImageCache {
  readonly #dir: string
  readonly #store: ImageStore
  /** Fetches under way in this process, by file: a second caller waits for the first one's. */
  readonly #fetching = new Map<string, Promise<string>>()

  constructor(dir: string, store: ImageStore) {
    this.#dir = dir
    this.#store = store
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
    if (await isFile(file)) return file
    let fetching = this.#fetching.get(file)
    if (!fetching) {
      fetching = this.#fetch(row, file).finally(() => this.#fetching.delete(file))
      this.#fetching.set(file, fetching)
    }
    return fetching
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
      return file
    } catch (e) {
      await removeFile(tmp)
      throw e
    }
  }
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  )
}
