// Server list pagination (limit, marker) on both dialects: pages read by keyset, in Nova's order
// (created_at desc, id desc), the same with and without the regex filters.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { startTestSkiff, type TestSkiff } from '../helpers/skiff.ts'

let skiff: TestSkiff
let token: string

before(async () => {
  skiff = await startTestSkiff()
  token = await skiff.token('demo')
  const images = await skiff.apps.image.inject({ method: 'GET', url: '/v2/images?name=skiff-base', headers: { 'x-auth-token': token } })
  // Created at once: several share a created_at millisecond, so the id breaks the ties.
  const made = await Promise.all(
    Array.from({ length: 7 }, (_, i) =>
      skiff.compute('POST', '/v2.1/servers', {
        token,
        body: { server: { name: `page-${i}`, imageRef: images.json().images[0].id, flavorRef: '1' } },
      }),
    ),
  )
  for (const r of made) assert.equal(r.statusCode, 202)
})
after(async () => {
  await skiff?.close()
})

const ids = async (url: string) => {
  const r = await skiff.compute('GET', url, { token })
  assert.equal(r.statusCode, 200, r.body)
  return (r.json().servers as { id: string }[]).map((s) => s.id)
}

test('pages of 3 by marker give the whole list, in order, once', async () => {
  for (const filter of ['', '&name=page']) {
    const all = await ids(`/v2.1/servers?${filter}`)
    assert.equal(all.length, 7)
    const paged: string[] = []
    let marker = ''
    for (;;) {
      const page = await ids(`/v2.1/servers/detail?limit=3${filter}${marker ? `&marker=${marker}` : ''}`)
      paged.push(...page)
      if (page.length < 3) break
      marker = page.at(-1)!
    }
    assert.deepEqual(paged, all)
  }
})

test('an unknown marker is 400 with Nova message', async () => {
  const r = await skiff.compute('GET', '/v2.1/servers?marker=00000000-0000-4000-8000-000000000000', { token })
  assert.equal(r.statusCode, 400)
  assert.deepEqual(r.json(), { badRequest: { code: 400, message: 'marker [00000000-0000-4000-8000-000000000000] not found' } })
})
