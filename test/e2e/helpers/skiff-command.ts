// How the end-to-end tests start `skiff`: the TypeScript sources through tsx, so that a test
// exercises the code as it is now and never a dist/ built from older sources. The compiled build
// that `npm start` runs has its own test (build.test.ts), which builds it first.
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

/** `node` arguments before the command's own: `spawn(process.execPath, [...SKIFF, 'serve', ...])`. */
export const SKIFF = ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'main.ts')]
