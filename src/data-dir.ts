// The data dir holds the deployment's secrets: the sealing key, client files with passwords, the
// SQLite database (password and token hashes), image files (private images too). Owner-only,
// whatever the umask: directories 0700 here, files 0600 where they are written.
import { chmodSync, mkdirSync } from 'node:fs'
import path from 'node:path'

/** `dir` (and missing parents) with mode 0700, an existing one narrowed to it; a one-line error when it cannot be. */
export function privateDir(dir: string, what: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new Error(`cannot create the ${what} ${dir}: ${(err as Error).message}`)
  }
  try {
    chmodSync(dir, 0o700)
  } catch (err) {
    throw new Error(`cannot make the ${what} ${dir} private (mode 0700): ${(err as Error).message}`)
  }
}

/** At start, before the database is opened (its default place is in the data dir) and anything listens. */
export function prepareDataDir(dataDir: string): void {
  privateDir(dataDir, 'data dir')
  privateDir(imageDir(dataDir), 'image dir')
}

export const imageDir = (dataDir: string) => path.join(dataDir, 'images')
