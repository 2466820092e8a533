// The metadata of volumes and snapshots: a JSON object of strings in a text column. Edits are a
// compare-and-set on that text, retried on a concurrent write, so two writers (two API processes
// on one PostgreSQL) never lose each other's keys. Keys are own keys only: `toString` is a key a
// volume may have, not one every volume has.
import { InvalidInput } from './errors.ts'

export type Metadata = Record<string, string>

export const parseMetadata = (text: string): Metadata => JSON.parse(text) as Metadata

export const hasKey = (m: Metadata, key: string): boolean => Object.hasOwn(m, key)

/** `metadata={'k': 'v'}` as cinderclient sends it (a Python dict's repr), or JSON. */
function parseMetadataFilter(raw: string): Metadata {
  try {
    const json = raw.replace(/'/g, '"').replace(/\bNone\b/g, 'null')
    const v = JSON.parse(json) as unknown
    if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]))
  } catch {
    // fall through
  }
  throw new InvalidInput(`Invalid metadata filter: ${raw}`)
}

/** The rows whose metadata holds every item of the `metadata` filter (undefined: no filter). */
export function withMetadata<R extends { metadata: string }>(rows: R[], filter: string | undefined): R[] {
  if (filter === undefined) return rows
  const want = Object.entries(parseMetadataFilter(filter))
  return rows.filter((r) => {
    const m = parseMetadata(r.metadata)
    return want.every(([k, v]) => hasKey(m, k) && m[k] === v)
  })
}

/** How a row's metadata is read and compare-and-set: undefined when the row is gone. */
export interface MetadataStore {
  read(): Promise<string | undefined>
  /** Sets `next` if the text is still `expected`; false if another writer came first. */
  swap(expected: string, next: string): Promise<boolean>
}

/**
 * Applies `edit` to the metadata as it is, from `current` (the text already read with the row),
 * until the compare-and-set holds; `gone` is the error for a row deleted meanwhile.
 */
export async function editMetadata(
  store: MetadataStore,
  current: string,
  edit: (m: Metadata) => Metadata,
  gone: () => Error,
): Promise<Metadata> {
  for (;;) {
    const next = edit(parseMetadata(current))
    if (await store.swap(current, JSON.stringify(next))) return next
    const fresh = await store.read()
    if (fresh === undefined) throw gone()
    current = fresh
  }
}
