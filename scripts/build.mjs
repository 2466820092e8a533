// `npm run build` (and `npm ci`, through `prepare`): tsc compiles src/ to dist/ (type-checked,
// incremental, with source maps), then esbuild bundles dist/cli/main.js and everything it
// imports into one file, dist/skiff.mjs, which bin/skiff.js runs. Loading some 700 modules file
// by file (resolve, read, compile each) was half of a start's CPU time: bench/start.ts, a start
// on an existing data dir, 980 ms of CPU compiled file by file, 490 ms bundled.
//
// Left outside the bundle: native addons (better-sqlite3; cpu-features under ssh2) and what is
// loaded only when used (pg for a PostgreSQL URL, ssh2 for the qemu driver's probe).
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const require = createRequire(import.meta.url)

execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
  cwd: root,
  stdio: 'inherit',
})

await build({
  entryPoints: [path.join(root, 'dist/cli/main.js')],
  outfile: path.join(root, 'dist/skiff.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', 'cpu-features', 'pg', 'ssh2'],
  // The CommonJS packages inside an ESM bundle still call require().
  banner: { js: "import { createRequire as skiffCreateRequire } from 'node:module'; const require = skiffCreateRequire(import.meta.url);" },
  // No keepNames: it wraps every function expression in a defineProperty of its name, at each
  // creation (closures in the request path too): a GET of a server cost 73 µs of CPU with it,
  // 48 µs without. Names collide rarely (esbuild then adds a digit); the source map gives the
  // place of every frame of a stack trace.
  keepNames: false,
  sourcemap: true,
  logLevel: 'warning',
})
