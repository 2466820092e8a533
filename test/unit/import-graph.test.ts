// The layering, checked on the import lines of src/**/*.ts: every arrow points down. drivers/,
// store/ and tasks/ are infrastructure and never reach up into compute/ (the domain) or api/
// (HTTP); route files reach the database only through the domain's services and repositories.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : []
  })
}

/** Every module a file imports (static and dynamic imports, re-exports), as paths relative to src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^'"]*?\sfrom\s+['"]([^'"]+)['"]/gms),
    ...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!)
  return specs.filter((s) => s.startsWith('.')).map((s) => path.relative(SRC, path.resolve(path.dirname(file), s)))
}

const graph = sourceFiles(SRC).map((file) => ({ file: path.relative(SRC, file), imports: importsOf(file) }))

/** `from` files that import `to` modules, as "file → module" lines. */
function arrows(from: RegExp, to: RegExp): string[] {
  return graph.filter((f) => from.test(f.file)).flatMap((f) => f.imports.filter((i) => to.test(i)).map((i) => `${f.file} → ${i}`))
}

test('the parser sees the imports (a check that finds nothing must be able to find something)', () => {
  const main = graph.find((f) => f.file === 'main.ts')
  assert.ok(
    main && main.imports.includes('compute/server-worker.ts') && main.imports.includes('store/db.ts'),
    JSON.stringify(main?.imports),
  )
  assert.ok(arrows(/^compute\//, /^drivers\//).length > 0)
})

test('drivers/, store/ and tasks/ never import compute/ or api/', () => {
  assert.deepEqual(arrows(/^(drivers|store|tasks)\//, /^(compute|api)\//), [])
})

test('nothing below api/ imports api/', () => {
  assert.deepEqual(arrows(/^(compute|identity|images|drivers|store|tasks)\//, /^api\//), [])
})

// Pending: the repositories work (issue #10) takes SQL and the store out of the route files; the
// lead enables this once it is merged.
test('route files never import the store', () => {
  assert.deepEqual(arrows(/^api\/routes\//, /^store\//), [])
})

// SQL lives in store/'s repositories; the task queue and the host registry keep theirs in their
// own files on purpose (the whole queue is SQL one can read in one file).
test('only store/, tasks/queue.ts and tasks/hosts.ts import kysely', () => {
  const users = sourceFiles(SRC)
    .filter((f) => /^\s*import\s[^'"]*?\sfrom\s+['"]kysely['"]/ms.test(readFileSync(f, 'utf8')))
    .map((f) => path.relative(SRC, f))
  assert.ok(users.includes('store/db.ts'), 'the check finds kysely where it is')
  assert.deepEqual(
    users.filter((f) => !f.startsWith('store/') && f !== 'tasks/queue.ts' && f !== 'tasks/hosts.ts'),
    [],
  )
})

// The dashboard is one more client of the public APIs (through the listeners' routes with the
// user's token): it never reaches a service or the store around the API's policy.
test('dashboard/ reaches Skiff only through api/app.ts (and the sealing key)', () => {
  const imports = arrows(/^dashboard\//, /./).map((a) => a.split(' → ')[1]!)
  assert.ok(imports.includes('api/app.ts'), 'the check sees the dashboard')
  assert.deepEqual(
    imports.filter((i) => !i.startsWith('dashboard/') && i !== 'api/app.ts' && i !== 'secrets.ts'),
    [],
  )
})
