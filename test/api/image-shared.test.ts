// Two Skiffs (their own data dirs) on one PostgreSQL: image data lives in the database, so an
// image uploaded through one downloads byte for byte through the other, and a delete through
// either removes it for both. Skipped without PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL).
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { CHUNK_BYTES } from '../../src/images/image-store.ts'
import { freshDatabase, testPostgresUrl, type TestDatabase } from '../helpers/database.ts'
import { startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

const skip = testPostgresUrl() ? false : 'needs PostgreSQL (SKIFF_TEST_DATABASE_URL or DATABASE_URL)'

describe('images across API processes on one PostgreSQL', { skip }, () => {
  let database: TestDatabase
  let a: TestSkiff
  let b: TestSkiff

  before(async () => {
    database = await freshDatabase('postgres')
    a = await startTestSkiff({ databaseUrl: database.url, agentHost: 'host-a' })
    // Another host: its own data dir, the deployment's sealing key.
    b = await startTestSkiff({ databaseUrl: database.url, agentHost: 'host-b', secretKeyFile: path.join(a.dataDir, 'secret.key') })
  })
  after(async () => {
    await b?.close()
    await a?.close()
    await database?.drop()
  })

  test('uploaded through one, downloaded byte for byte through the other; deleted through the other, gone for both', async () => {
    const token = await a.token('demo')
    const headers = { 'x-auth-token': token }
    const created = await a.apps.image.inject({
      method: 'POST',
      url: '/v2/images',
      headers,
      payload: { name: 'shared', visibility: 'private', disk_format: 'raw', container_format: 'bare' },
    })
    assert.equal(created.statusCode, 201, created.body)
    const id = created.json().id as string
    const data = randomBytes(2 * CHUNK_BYTES + 4321)
    const put = await a.apps.image.inject({
      method: 'PUT',
      url: `/v2/images/${id}/file`,
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      payload: data,
    })
    assert.equal(put.statusCode, 204, put.body)

    const got = await b.apps.image.inject({ method: 'GET', url: `/v2/images/${id}/file`, headers })
    assert.equal(got.statusCode, 200)
    assert.equal(got.headers['content-md5'], createHash('md5').update(data).digest('hex'))
    assert.equal(Number(got.headers['content-length']), data.length)
    assert.ok(got.rawPayload.equals(data), 'the same bytes')
    const shown = (await b.apps.image.inject({ method: 'GET', url: `/v2/images/${id}`, headers })).json()
    assert.equal(shown.os_hash_value, createHash('sha512').update(data).digest('hex'))
    assert.equal(existsSync(path.join(a.dataDir, 'images', id)), false, 'not a file of either data dir')

    const del = await b.apps.image.inject({ method: 'DELETE', url: `/v2/images/${id}`, headers })
    assert.equal(del.statusCode, 204, del.body)
    assert.equal((await a.apps.image.inject({ method: 'GET', url: `/v2/images/${id}/file`, headers })).statusCode, 404)
  })

  test('the bootstrap images (written by the first Skiff) download through the second', async () => {
    // The second Skiff does not know the bootstrap passwords (the first one's data dir does).
    const token = await a.token('admin')
    const id = await a.imageId('skiff-rescue')
    const res = await b.apps.image.inject({ method: 'GET', url: `/v2/images/${id}/file`, headers: { 'x-auth-token': token } })
    assert.equal(res.statusCode, 200)
    const row = (await a.apps.image.inject({ method: 'GET', url: `/v2/images/${id}`, headers: { 'x-auth-token': token } })).json()
    assert.equal(createHash('md5').update(res.rawPayload).digest('hex'), row.checksum)
  })
})
