// Serialized views remembered while what they are made of is unchanged. A page of 100 servers
// is 130 kB of JSON: building the views and JSON.stringify were a third of its CPU, while the
// rows they come from rarely change between two reads. The key is every input of the view,
// written out (the whole row, not updated_at alone: not every change of a row, its address or
// its fault moves updated_at), so an entry can only be reused for the same bytes.

/** Entries kept per memo; the oldest goes first. A server's is about 2 kB with its key. */
const MAX_ENTRIES = 5000

export class JsonMemo {
  readonly #entries = new Map<string, { key: string; json: string }>()
  readonly #max: number

  constructor(max = MAX_ENTRIES) {
    this.#max = max
  }

  /** The JSON text of `build()`, made again only when `key` differs from the one `id` was made with. */
  json(id: string, key: string, build: () => unknown): string {
    const hit = this.#entries.get(id)
    if (hit !== undefined && hit.key === key) return hit.json
    const json = JSON.stringify(build())
    if (hit === undefined && this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!)
    this.#entries.set(id, { key, json })
    return json
  }
}

/**
 * Values written one after another so that no two different lists give the same text: strings
 * with their length before them, other values tagged by type.
 */
export function keyOf(values: Iterable<unknown>): string {
  let k = ''
  for (const v of values) {
    if (typeof v === 'string') k += `s${v.length}:${v}`
    else if (typeof v === 'number') k += `n${v};`
    else if (v === null) k += 'z;'
    else if (v === undefined) k += 'u;'
    else if (typeof v === 'boolean') k += v ? 't;' : 'f;'
    else k += `j${JSON.stringify(v)};`
  }
  return k
}

/** keyOf the values of a row object, in its key order (a row's columns come in one order). */
export function rowKey(row: object): string {
  return keyOf(Object.values(row))
}
