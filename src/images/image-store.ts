// Where image data lives: files in this process's data dir (the embedded default), or chunked
// rows of the database, which every API process and agent on one PostgreSQL reaches (Glance's
// shared store). Both hash as the data arrives and publish it with the caller's status flip.
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { BadRequest } from '../errors.ts'
import { ImageChunksRepo } from '../store/image-chunks-repo.ts'
import type { DatabaseHandle, Db } from '../store/schema.ts'

/** Image bytes: the request stream, or chunks already in memory (bootstrap). */
export type ImageData = AsyncIterable<Uint8Array> | Iterable<Uint8Array>

/** What an upload wrote: Glance's `size`, `checksum` (md5) and `os_hash_value` (sha512). */
export interface Written {
  size: number
  md5: string
  sha512: string
}

/**
 * Makes written data the image's (the `saving` → `active` flip); false when the image went
 * meanwhile. The database store passes its transaction, so the flip commits with the chunks.
 */
export type Publish = (written: Written, db?: Db) => Promise<boolean>

export type ImageStoreKind = 'file' | 'database'

export interface ImageStore {
  readonly kind: ImageStoreKind
  /** Store the data of image `id`: null when `publish` answered false (nothing is kept then). */
  put(id: string, data: ImageData, publish: Publish): Promise<Written | null>
  /** The data, or undefined when there is none (checked before the first byte is sent). */
  get(id: string, size: number): Promise<Readable | undefined>
  delete(id: string): Promise<void>
  /** A file of this host that holds the data, when the store keeps one (agents read it in place). */
  localPath(id: string): string | undefined
  /** At start-up: drop what uploads cut short left behind. */
  recover(): Promise<void>
  /** True when a live upload holds a lock that start-up recovery of another process must respect. */
  readonly locksUploads: boolean
}

/** The data of each image in `<dir>/<id>`, written to a temp file and renamed when whole (0700 dir, 0600 files). */
export class FileImageStore implements ImageStore {
  readonly kind = 'file'
  readonly locksUploads = false
  readonly #dir: string

  constructor(dir: string) {
    this.#dir = dir
  }

  async put(id: string, data: ImageData, publish: Publish): Promise<Written | null> {
    // Private images too: only Skiff's user reads image files (0700 directory, 0600 files).
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const tmp = path.join(this.#dir, `.${id}.${randomBytes(6).toString('hex')}.tmp`)
    const final = this.#path(id)
    let written: Written
    try {
      written = await writeHashed(tmp, data)
      // Only a complete, synced file takes the image's name; the record turns active after that.
      await rename(tmp, final)
    } catch (e) {
      await removeFile(tmp)
      throw e
    }
    if (await publish(written)) return written
    // Deleted while the data was arriving: nothing may keep the file.
    await removeFile(final)
    return null
  }

  async get(id: string): Promise<Readable | undefined> {
    // Open before answering, so a missing file is a clean error rather than a cut-off 200.
    const fh = await open(this.#path(id), 'r').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined
      throw e
    })
    return fh?.createReadStream()
  }

  async delete(id: string): Promise<void> {
    await removeFile(this.#path(id))
  }

  localPath(id: string): string {
    return this.#path(id)
  }

  async recover(): Promise<void> {
    const names = await readdir(this.#dir).catch(() => [] as string[])
    await Promise.all(names.filter((n) => n.endsWith('.tmp')).map((n) => removeFile(path.join(this.#dir, n))))
  }

  // Ids of stored images are uuids (checked at create), so they are safe file names.
  #path(id: string): string {
    return path.join(this.#dir, id)
  }
}

/** Bytes per row of `image_chunks`: large enough that a GB is a thousand rows, small enough to hold one in memory. */
export const CHUNK_BYTES = 1024 * 1024

/**
 * Uploads to the database at once per process: each holds a connection of the pool (10) for as
 * long as its client sends, so more wait their turn rather than starve every other request.
 */
export const DATABASE_UPLOADS = 4

/**
 * The data in `image_chunks(image_id, seq, data)`, ~1 MiB a row. An upload writes its chunks and
 * the status flip in one transaction: a crash or a cut connection rolls the chunks back, and no
 * reader sees a half-written image (it stays `saving` until the commit). Reads go chunk by chunk,
 * so neither way holds more than one chunk in memory. Meant for PostgreSQL (on SQLite the one
 * connection would be held for the whole upload).
 */
export class DatabaseImageStore implements ImageStore {
  readonly kind = 'database'
  readonly #chunks: ImageChunksRepo
  readonly #legacyDir: string | undefined
  readonly #slots = new Slots(DATABASE_UPLOADS)

  /** `legacyDir`: the file store's directory, whose files of active images are copied in at start (upgrades). */
  constructor(db: DatabaseHandle, opts: { legacyDir?: string } = {}) {
    this.#chunks = new ImageChunksRepo(db)
    this.#legacyDir = opts.legacyDir
  }

  get locksUploads(): boolean {
    return this.#chunks.postgres
  }

  async put(id: string, data: ImageData, publish: Publish): Promise<Written | null> {
    const gone = new Error('image gone')
    const release = await this.#slots.take()
    try {
      return await this.#chunks.write(id, async (append, trx) => {
        const written = await hashChunks(data, CHUNK_BYTES, append)
        if (!(await publish(written, trx))) throw gone
        return written
      })
    } catch (e) {
      if (e === gone) return null
      throw e
    } finally {
      release()
    }
  }

  async get(id: string, size: number): Promise<Readable | undefined> {
    const count = Math.ceil(size / CHUNK_BYTES)
    if (count > 0) {
      const first = await this.#chunks.chunk(id, 0)
      if (!first) return undefined
      const chunkAt = (seq: number) => this.#chunks.chunk(id, seq)
      return Readable.from(
        (async function* () {
          yield first
          for (let seq = 1; seq < count; seq++) {
            const chunk = await chunkAt(seq)
            if (!chunk) throw new Error(`image ${id}: chunk ${seq} of ${count} is missing (deleted while read?)`)
            yield chunk
          }
        })(),
        { objectMode: false },
      )
    }
    return Readable.from([], { objectMode: false })
  }

  async delete(id: string): Promise<void> {
    await this.#chunks.deleteAll(id)
  }

  localPath(): undefined {
    return undefined
  }

  /**
   * Nothing to drop: an upload cut short rolled its chunks back with its transaction. But a data
   * dir of a Skiff from before the database store holds the files of its images: each active
   * image without chunks whose file is here, with the image's checksums, is copied in (the file
   * stays; a file that does not match is left out, its image keeps no data).
   */
  async recover(): Promise<void> {
    const dir = this.#legacyDir
    if (!dir) return
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => UUID.test(n))
    for (const id of names) {
      const row = await this.#chunks.activeSums(id)
      if (!row || !row.size || (await this.#chunks.chunk(id, 0))) continue
      const mismatch = new Error('mismatch')
      // Another process starting on a copy of this data dir may be at the same image.
      await this.#chunks
        .writeIfEmpty(id, async (append) => {
          const written = await hashChunks(createReadStream(path.join(dir, id)), CHUNK_BYTES, append)
          if (
            written.size !== row.size ||
            written.md5 !== row.checksum ||
            (row.os_hash_value !== null && written.sha512 !== row.os_hash_value)
          )
            throw mismatch
        })
        .catch((e: unknown) => {
          if (e !== mismatch) throw new Error(`cannot copy the image file ${path.join(dir, id)} into the database: ${(e as Error).message}`)
        })
    }
  }
}

// The names the file store gives image files (ids are uuids); its temp files start with a dot.
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

/** At most `n` holders at once; the others wait in order. */
class Slots {
  #free: number
  readonly #waiting: (() => void)[] = []

  constructor(n: number) {
    this.#free = n
  }

  async take(): Promise<() => void> {
    if (this.#free > 0) this.#free--
    else await new Promise<void>((resolve) => this.#waiting.push(resolve))
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#waiting.shift()
      if (next) next()
      else this.#free++
    }
  }
}

/** The store of a deployment: `auto` is the database on PostgreSQL, files on SQLite. */
export function chooseImageStore(choice: 'auto' | ImageStoreKind, db: DatabaseHandle, dir: string): ImageStore {
  const kind = choice === 'auto' ? (new ImageChunksRepo(db).postgres ? 'database' : 'file') : choice
  return kind === 'database' ? new DatabaseImageStore(db, { legacyDir: dir }) : new FileImageStore(dir)
}

/**
 * Feed `data` to `sink` in pieces of `size` bytes (the last one shorter; undefined: as they come),
 * hashing as it goes. A request stream that fails is a client gone before sending everything
 * (Glance's message).
 */
async function hashChunks(data: ImageData, size: number | undefined, sink: (chunk: Buffer) => Promise<void>): Promise<Written> {
  const md5 = createHash('md5')
  const sha512 = createHash('sha512')
  let total = 0
  let pending: Buffer[] = []
  let pendingBytes = 0
  const flush = async (all: boolean) => {
    while (size !== undefined && (pendingBytes >= size || (all && pendingBytes > 0))) {
      const joined = Buffer.concat(pending, pendingBytes)
      const take = Math.min(size, joined.length)
      await sink(joined.subarray(0, take))
      const rest = joined.subarray(take)
      pending = rest.length > 0 ? [rest] : []
      pendingBytes = rest.length
    }
  }
  const it = Symbol.asyncIterator in data ? data[Symbol.asyncIterator]() : data[Symbol.iterator]()
  for (;;) {
    let next: IteratorResult<Uint8Array, unknown>
    try {
      next = await it.next()
    } catch {
      throw new BadRequest('Client disconnected before sending all data to backend')
    }
    if (next.done) break
    const chunk = next.value
    md5.update(chunk)
    sha512.update(chunk)
    total += chunk.length
    if (size === undefined) {
      await sink(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))
      continue
    }
    pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))
    pendingBytes += chunk.length
    await flush(false)
  }
  await flush(true)
  return { size: total, md5: md5.digest('hex'), sha512: sha512.digest('hex') }
}

/** Write the stream to `file`, hashing as it goes; fsync before returning so a rename publishes whole data. */
async function writeHashed(file: string, data: ImageData): Promise<Written> {
  const fh = await open(file, 'wx', 0o600)
  try {
    await fh.chmod(0o600) // whatever the umask
    const written = await hashChunks(data, undefined, async (chunk) => {
      for (let off = 0; off < chunk.length;) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten
    })
    await fh.sync()
    return written
  } finally {
    await fh.close()
  }
}

export async function removeFile(file: string): Promise<void> {
  await unlink(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e
  })
}
