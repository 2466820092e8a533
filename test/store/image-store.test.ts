// The image stores against a real database (SQLite, and PostgreSQL when the tests are given one):
// data written and read back byte for byte across chunk boundaries, an upload cut short that
// leaves nothing readable, two uploads of one image at once, and (PostgreSQL, where API processes
// share the database) an upload under way seen from another connection and another process's start.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buffer } from 'node:stream/consumers'
import { after, before, describe, test } from 'node:test'
import { systemClock } from '../../src/clock.ts'
import { Conflict } from '../../src/errors.ts'
import { ImageService } from '../../src/images/image-service.ts'
import { CHUNK_BYTES, DatabaseImageStore, FileImageStore, type ImageStore } from '../../src/images/image-store.ts'
import { openStore, type Store } from '../../src/store/db.ts'
import { ImagesRepo } from '../../src/store/images-repo.ts'
import { freshDatabase, harnessDialect, type TestDatabase } from '../helpers/database.ts'

const admin = { projectId: 'p'.padEnd(32, '0'), isAdmin: true, roles: ['admin'] }
let database: TestDatabase
let store: Store
let dir: string

before(async () => {
  database = await freshDatabase()
  store = await openStore(database.url)
  dir = await mkdtemp(path.join(tmpdir(), 'skiff-image-store-'))
})
after(async () => {
  await store.close()
  await database.drop()
  await rm(dir, { recursive: true, force: true })
})

/** `data` in pieces of awkward sizes (never aligned on a chunk), as a request stream arrives. */
async function* pieces(
  data: Buffer,
  opts: { failAfter?: number; waitAt?: { bytes: number; until: Promise<void>; reached: () => void } } = {},
) {
  let off = 0
  let n = 0
  while (off < data.length) {
    const len = Math.min(data.length - off, 65_521 + (n++ % 7) * 1009)
    if (opts.failAfter !== undefined && off >= opts.failAfter) throw new Error('connection reset')
    if (opts.waitAt && off >= opts.waitAt.bytes) {
      opts.waitAt.reached()
      await opts.waitAt.until
      opts.waitAt = undefined
    }
    yield data.subarray(off, off + len)
    off += len
  }
}

const digest = (algo: string, data: Buffer) => createHash(algo).update(data).digest('hex')

async function bytesOf(s: ImageStore, id: string, size: number): Promise<Buffer | undefined> {
  const stream = await s.get(id, size)
  if (!stream) return undefined
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

const chunkRows = async (id: string) =>
  Number(
    (
      await store.db
        .selectFrom('image_chunks')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('image_id', '=', id)
        .executeTakeFirstOrThrow()
    ).n,
  )

for (const kind of ['file', 'database'] as const) {
  describe(`the ${kind} store`, () => {
    let images: ImageService
    let imageStore: ImageStore
    before(() => {
      imageStore = kind === 'file' ? new FileImageStore(path.join(dir, 'images')) : new DatabaseImageStore(store.db)
      images = new ImageService(new ImagesRepo(store.db, systemClock), systemClock, imageStore)
    })
    const newImage = async () => (await images.create(admin, { name: 'img', disk_format: 'raw', container_format: 'bare' })).id

    test("an image of several chunks comes back byte for byte, with Glance's size and checksums; delete removes the data", async () => {
      const data = randomBytes(2 * CHUNK_BYTES + 12_345)
      const id = await newImage()
      const row = await images.upload(admin, id, pieces(data))
      assert.equal(row.status, 'active')
      assert.equal(row.size, data.length)
      assert.equal(row.checksum, digest('md5', data))
      assert.equal(row.os_hash_value, digest('sha512', data))
      if (kind === 'database') assert.equal(await chunkRows(id), 3)
      const down = await images.download(admin, id)
      assert.ok(down)
      assert.equal(down.size, data.length)
      const parts: Buffer[] = []
      for await (const c of down.stream) parts.push(c as Buffer)
      assert.ok(Buffer.concat(parts).equals(data), 'the same bytes')
      await images.delete(admin, id)
      assert.equal(await bytesOf(imageStore, id, data.length), undefined)
      if (kind === 'database') assert.equal(await chunkRows(id), 0)
    })

    test('an empty image and a one-byte image', async () => {
      for (const data of [Buffer.alloc(0), Buffer.from('x')]) {
        const id = await newImage()
        await images.upload(admin, id, [data])
        assert.deepEqual(await bytesOf(imageStore, id, data.length), data)
      }
    })

    test('an upload cut short leaves the image queued, with nothing readable, and a new upload succeeds', async () => {
      const data = randomBytes(CHUNK_BYTES + CHUNK_BYTES / 2)
      const id = await newImage()
      await assert.rejects(images.upload(admin, id, pieces(data, { failAfter: CHUNK_BYTES + 100 })), /Client disconnected/)
      const row = await images.find(id)
      assert.equal(row?.status, 'queued')
      assert.equal(await images.download(admin, id), null, 'no data (Glance answers 204)')
      if (kind === 'database') assert.equal(await chunkRows(id), 0, 'the chunks written went with the transaction')
      else
        assert.deepEqual(
          (await readdir(path.join(dir, 'images'))).filter((n) => n.includes(id)),
          [],
        )
      const again = await images.upload(admin, id, pieces(data))
      assert.equal(again.status, 'active')
      assert.ok((await bytesOf(imageStore, id, data.length))?.equals(data))
    })

    test('two uploads of one image at once: one wins, the other is refused with 409; two images at once both arrive', async () => {
      const id = await newImage()
      const a = randomBytes(CHUNK_BYTES + 1),
        b = randomBytes(CHUNK_BYTES + 2)
      const results = await Promise.allSettled([images.upload(admin, id, pieces(a)), images.upload(admin, id, pieces(b))])
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
      const lost = results.find((r) => r.status === 'rejected')
      assert.ok(lost?.reason instanceof Conflict)
      const winner = results[0]!.status === 'fulfilled' ? a : b
      assert.ok((await bytesOf(imageStore, id, winner.length))?.equals(winner))

      const [x, y] = [await newImage(), await newImage()]
      const [dx, dy] = [randomBytes(CHUNK_BYTES * 2 + 7), randomBytes(CHUNK_BYTES + 9)]
      await Promise.all([images.upload(admin, x, pieces(dx)), images.upload(admin, y, pieces(dy))])
      assert.ok((await bytesOf(imageStore, x, dx.length))?.equals(dx))
      assert.ok((await bytesOf(imageStore, y, dy.length))?.equals(dy))
    })

    test('an image deleted while its data arrives keeps no data', async () => {
      const id = await newImage()
      let reached!: () => void
      const atHalf = new Promise<void>((r) => {
        reached = r
      })
      let release!: () => void
      const until = new Promise<void>((r) => {
        release = r
      })
      const data = randomBytes(CHUNK_BYTES * 2)
      const upload = images.upload(admin, id, pieces(data, { waitAt: { bytes: CHUNK_BYTES + 1, until, reached } }))
      await atHalf
      const deleting = images.delete(admin, id)
      // On SQLite the upload's transaction holds the one connection: the delete comes after it.
      const deleteFirst = kind === 'file' || harnessDialect() === 'postgres'
      if (deleteFirst) await deleting
      release()
      if (deleteFirst) await assert.rejects(upload, /could not be found after upload/)
      else assert.equal((await upload).status, 'active')
      await deleting
      assert.equal(await bytesOf(imageStore, id, data.length), undefined)
      if (kind === 'database') assert.equal(await chunkRows(id), 0)
    })
  })
}

test('the database store takes in, at start, the files of active images a file store left (an upgrade); not one that does not match', async () => {
  const legacyDir = path.join(dir, 'legacy')
  const files = new ImageService(new ImagesRepo(store.db, systemClock), systemClock, new FileImageStore(legacyDir))
  const data = randomBytes(CHUNK_BYTES + 77)
  const kept = await files.upload(
    admin,
    (await files.create(admin, { name: 'old', disk_format: 'raw', container_format: 'bare' })).id,
    pieces(data),
  )
  const bad = await files.upload(admin, (await files.create(admin, { name: 'bad', disk_format: 'raw', container_format: 'bare' })).id, [
    Buffer.from('abc'),
  ])
  await writeFile(path.join(legacyDir, bad.id), 'abd')
  const dbStore = new DatabaseImageStore(store.db, { legacyDir })
  const images = new ImageService(new ImagesRepo(store.db, systemClock), systemClock, dbStore)
  assert.equal(await bytesOf(dbStore, kept.id, data.length), undefined, 'not in the database yet')
  await images.recoverInterruptedUploads()
  await images.recoverInterruptedUploads() // twice: copied once
  assert.equal(await chunkRows(kept.id), 2)
  assert.ok((await bytesOf(dbStore, kept.id, data.length))?.equals(data))
  assert.equal(await chunkRows(bad.id), 0)
})

test('more uploads to the database at once than it takes: the others wait their turn, all arrive', async () => {
  const images = new ImageService(new ImagesRepo(store.db, systemClock), systemClock, new DatabaseImageStore(store.db))
  const datas = Array.from({ length: 9 }, (_, i) => randomBytes(CHUNK_BYTES / 2 + i))
  const ids = await Promise.all(
    datas.map(async () => (await images.create(admin, { name: 'many', disk_format: 'raw', container_format: 'bare' })).id),
  )
  await Promise.all(ids.map((id, i) => images.upload(admin, id, pieces(datas[i]!))))
  for (const [i, id] of ids.entries()) assert.ok((await bytesOf(new DatabaseImageStore(store.db), id, datas[i]!.length))?.equals(datas[i]!))
})

describe(
  'the database store on PostgreSQL, shared by processes',
  { skip: harnessDialect() === 'postgres' ? false : 'needs PostgreSQL' },
  () => {
    test("an upload under way is `saving` with nothing readable from elsewhere; another process's start leaves it alone; a dead one's is requeued", async () => {
      const other = await openStore(database.url) // another process: its own pool
      try {
        const mine = new ImageService(new ImagesRepo(store.db, systemClock), systemClock, new DatabaseImageStore(store.db))
        const theirs = new ImageService(new ImagesRepo(other.db, systemClock), systemClock, new DatabaseImageStore(other.db))
        const id = (await mine.create(admin, { name: 'big', disk_format: 'raw', container_format: 'bare' })).id
        let reached!: () => void
        const atHalf = new Promise<void>((r) => {
          reached = r
        })
        let release!: () => void
        const until = new Promise<void>((r) => {
          release = r
        })
        const data = randomBytes(CHUNK_BYTES * 3)
        const upload = mine.upload(admin, id, pieces(data, { waitAt: { bytes: 2 * CHUNK_BYTES + 1, until, reached } }))
        await atHalf
        assert.equal((await theirs.find(id))?.status, 'saving')
        assert.equal(await theirs.download(admin, id), null)
        assert.equal(await new DatabaseImageStore(other.db).get(id, data.length), undefined, 'no committed chunk')

        // A `saving` image whose upload died with its process (no lock held): requeued at the other's start.
        const dead = (await mine.create(admin, { name: 'dead', disk_format: 'raw', container_format: 'bare' })).id
        await other.db.updateTable('images').set({ status: 'saving' }).where('id', '=', dead).execute()
        await theirs.recoverInterruptedUploads()
        assert.equal((await theirs.find(dead))?.status, 'queued')
        assert.equal((await theirs.find(id))?.status, 'saving', 'the live upload keeps its status')

        release()
        assert.equal((await upload).status, 'active')
        const got = await theirs.download(admin, id)
        assert.ok(got)
        assert.ok((await buffer(got.stream)).equals(data), 'the same bytes through the other process')
      } finally {
        await other.close()
      }
    })
  },
)
