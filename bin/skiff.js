#!/usr/bin/env node
// The `skiff` command: the compiled build, dist/skiff.mjs (one bundle), made by `npm run build`
// (which `npm ci` runs; scripts/build.mjs says how).
// The tests and benchmarks run the TypeScript sources themselves, with tsx.
import { existsSync } from 'node:fs'

const main = new URL('../dist/skiff.mjs', import.meta.url)
if (!existsSync(main)) {
  console.error('skiff: dist/ is not built: run `npm run build` (or `npm ci`) first')
  process.exit(1)
}
await import(main.href)
