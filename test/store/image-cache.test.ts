// An agent's image cache, filled from the database store (SQLite, and PostgreSQL when the tests
// are given one): fetched once however many boots ask at once, verified against the image's
// checksums (a mismatch leaves nothing behind), and the file store's own file used in place.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { systemClock } from '../../src/clock.ts'
import { ImageCache } from '../../src/images/image-cache.ts'
import { ImageService } from '../../src/images/image-service.ts'
import { CHUNK_BYTES, DatabaseImageStore, FileImageStore, type ImageStore } from '../../src/images/image-store.ts'
import { openStore, type Store } from '../../src/store/db.ts'
import { ImagesRepo } from '../../src/store/images-repo.ts'
import { freshDatabase, type TestDatabase } from '../helpers/database.ts'

const admin = { projectId: 'p'.padEnd(32, '0'), isAdmin: true, roles: ['admin'] }
let database: TestDatabase
let store: Store
let dir: string

before(async () => {
  database = await freshDatabase()
  store = await openStore(database.url)
  dir = await mkdtemp(path.join(tmpdir(), 'skiff-image-cache-'))
})
after(async () => {
  await store.close()
  await database.drop()
  await rm(dir, { recursive: true, force: true })
})

/** The database store, counting the reads of image data. */
function countingStore(): { store: ImageStore; reads: () => number } {
  const inner = new DatabaseImageStore(store.db)
  let reads = 0
  return {
    reads: () => reads,
    store: {
      kind: inner.kind,
      locksUploads: inner.locksUploads,
      put: (id, data, publish) => inner.put(id, data, publish),
      get: (id, size) => {
        reads++
        return inner.get(id, size)
      },
      delete: (id) => inner.delete(id),
      localPath: () => undefined,
      recover: () => inner.recover(),
    },
  }
}

test("the cache fills once, from the store, under the image's sha512; private file modes", async () => {
  const { store: imageStore, reads } = countingStore()
  const images = new ImageService(new ImagesRepo(store.db, systemClock), systemClock, imageStore)
  const data = randomBytes(2 * CHUNK_BYTES + 5)
  const row = await images.upload(
    admin,
    (await images.create(admin, { name: 'disk', disk_format: 'qcow2', container_format: 'bare' })).id,
    [data],
  )
  const cacheDir = path.join(dir, 'agent-a', 'image-cache')
  const cache = new ImageCache(cacheDir, imageStore)
  // Three boots at once, then one later: one read of the store.
  const files = await Promise.all([cache.fileOf(row), cache.fileOf(row), cache.fileOf(row)])
  files.push(await cache.fileOf(row))
  assert.equal(new Set(files).size, 1)
  assert.equal(files[0], path.join(cacheDir, createHash('sha512').update(data).digest('hex')))
  assert.equal(reads(), 1)
  assert.ok((await readFile(files[0]!)).equals(data))
  assert.equal((await stat(files[0]!)).mode & 0o777, 0o600)
  assert.equal((await stat(cacheDir)).mode & 0o777, 0o700)
  assert.deepEqual(await readdir(cacheDir), [path.basename(files[0]!)], 'no temp file left')

  // Another agent's cache (another data dir) fetching at the same time gets the same bytes.
  const [b, c] = await Promise.all([
    new ImageCache(path.join(dir, 'agent-b'), imageStore).fileOf(row),
    new ImageCache(path.join(dir, 'agent-b'), imageStore).fileOf(row),
  ])
  assert.equal(b, c)
  assert.ok((await readFile(b)).equals(data))
})

test("data that does not match the image's checksums is refused and not kept", async () => {
  const imageStore = new DatabaseImageStore(store.db)
  const images = new ImageService(new ImagesRepo(store.db, systemClock), systemClock, imageStore)
  const row = await images.upload(admin, (await images.create(admin, { name: 'disk', disk_format: 'raw', container_format: 'bare' })).id, [
    randomBytes(1000),
  ])
  // The stored bytes changed under the record (a corrupted row): the cache must not take them.
  await store.db
    .updateTable('image_chunks')
    .set({ data: randomBytes(1000) })
    .where('image_id', '=', row.id)
    .execute()
  const cacheDir = path.join(dir, 'agent-c')
  await assert.rejects(new ImageCache(cacheDir, imageStore).fileOf(row), /does not match its checksum, os_hash_value/)
  assert.deepEqual(await readdir(cacheDir), [])
})

test("with the file store, the image's own file is used in place", async () => {
  const imagesDir = path.join(dir, 'images')
  const images = new ImageService(new ImagesRepo(store.db, systemClock), systemClock, new FileImageStore(imagesDir))
  const row = await images.upload(admin, (await images.create(admin, { name: 'disk', disk_format: 'raw', container_format: 'bare' })).id, [
    Buffer.from('disk'),
  ])
  const cacheDir = path.join(dir, 'agent-d')
  assert.equal(await new ImageCache(cacheDir, images.store).fileOf(row), path.join(imagesDir, row.id))
  await assert.rejects(stat(cacheDir), { code: 'ENOENT' })
})

test('pruned to its cap after each fetch: least recently used first, never an image in use', async () => {
  const { store: imageStore, reads } = countingStore()
  const images = new ImageService(new ImagesRepo(store.db, systemClock), systemClock, imageStore)
  const size = 100_000
  const upload = async (name: string) =>
    images.upload(admin, (await images.create(admin, { name, disk_format: 'raw', container_format: 'bare' })).id, [randomBytes(size)])
  const [used, a, b, c] = [await upload('in-use'), await upload('a'), await upload('b'), await upload('c')]
  const key = (row: typeof used) => row.os_hash_value!
  const cacheDir = path.join(dir, 'agent-prune')
  // Room for three and a half images; a server of this host boots from `used`.
  const cache = new ImageCache(cacheDir, imageStore, { maxBytes: 3.5 * size, inUse: async () => [key(used)] })
  const cached = async () => (await readdir(cacheDir)).sort()
  const lastUsed = (row: typeof used, msAgo: number) => utimes(path.join(cacheDir, key(row)), new Date(Date.now() - msAgo), new Date(0))

  for (const row of [used, a, b]) await cache.fileOf(row)
  await cache.prune()
  assert.deepEqual(await cached(), [key(used), key(a), key(b)].sort(), 'within the cap: nothing pruned')
  // `used` was used longest ago, then a, then b; a is used again now (a hit: no read).
  await lastUsed(used, 3 * 3600_000)
  await lastUsed(a, 2 * 3600_000)
  await lastUsed(b, 3600_000)
  const readsBefore = reads()
  await cache.fileOf(a)
  assert.equal(reads(), readsBefore)

  // c goes over the cap: b, the least recently used of those not in use, goes.
  await cache.fileOf(c)
  await cache.prune()
  assert.deepEqual(await cached(), [key(used), key(a), key(c)].sort())
  // b again: fetched again, the same bytes; now a is the least recently used.
  const again = await cache.fileOf(b)
  assert.equal(reads(), readsBefore + 2)
  assert.equal(
    createHash('sha512')
      .update(await readFile(again))
      .digest('hex'),
    key(b),
  )
  await cache.prune()
  assert.deepEqual(await cached(), [key(used), key(b), key(c)].sort())

  // A cap below what is in use: the image in use stays, whatever the cap.
  const tiny = new ImageCache(cacheDir, imageStore, { maxBytes: 1, inUse: async () => [key(used)] })
  assert.deepEqual((await tiny.prune()).map((f) => path.basename(f)).sort(), [key(b), key(c)].sort())
  assert.deepEqual(await cached(), [key(used)])
  // No cap: nothing is ever removed.
  assert.deepEqual(await new ImageCache(cacheDir, imageStore, { maxBytes: 0 }).prune(), [])
})
