// Glance v2's image list request, read as Glance reads it (glance/api/v2/images.py
// RequestDeserializer.index and ImagesController.index, glance/db/sqlalchemy/api.py
// `_image_get_all` and `_make_conditions_from_filters`, glance/common/utils.py), with Glance's
// messages. The route parses the query string into ordered pairs; the image service checks the
// rest in Glance's order and hands the repository a closed list of conditions.
import { BadRequest } from '../errors.ts'
import type { ImageCondition, ImageListQuery, IntColumn, SortDir, SortKey, TextColumn, TimeOp } from '../store/images-repo.ts'

/**
 * The query string as webob's MultiDict holds it: ordered pairs, `get` answers the last value of a
 * key and `pop` takes the first. Glance pops `limit`, `marker` and `sort` once each, so a second
 * one stays behind as a filter, exactly as it does there.
 */
export class QueryParams {
  readonly #items: [string, string][]

  constructor(items: Iterable<readonly [string, string]>) {
    this.#items = [...items].map(([k, v]) => [k, v])
  }

  /** Decoded as Python's parse_qsl(keep_blank_values=True) decodes: `+` is a space, `a` is `a=`. */
  static parse(queryString: string): QueryParams {
    return new QueryParams(new URLSearchParams(queryString))
  }

  copy(): QueryParams {
    return new QueryParams(this.#items)
  }

  has(key: string): boolean {
    return this.#items.some(([k]) => k === key)
  }

  get(key: string): string | undefined {
    for (let i = this.#items.length - 1; i >= 0; i--) if (this.#items[i]![0] === key) return this.#items[i]![1]
    return undefined
  }

  pop(key: string): string | undefined {
    const i = this.#items.findIndex(([k]) => k === key)
    return i < 0 ? undefined : this.#items.splice(i, 1)[0]![1]
  }

  /** Every value of `key` removed (what `params[key] = value` does before setting). */
  delete(key: string): void {
    for (let i = this.#items.length - 1; i >= 0; i--) if (this.#items[i]![0] === key) this.#items.splice(i, 1)
  }

  items(): readonly (readonly [string, string])[] {
    return this.#items
  }

  /** Python's dict() of it: keys in order of first appearance, each with its last value. */
  lastValues(): Map<string, string> {
    const m = new Map<string, string>()
    for (const [k, v] of this.#items) m.set(k, v)
    return m
  }
}

export const SORT_KEYS: readonly SortKey[] = ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at']
export const MEMBER_STATUSES = ['pending', 'accepted', 'rejected', 'all'] as const
const LIST_VISIBILITIES = ['community', 'public', 'private', 'shared', 'all']

/** What RequestDeserializer.index makes of the query: the page, the order, and the filters left. */
export interface ListRequest {
  limit?: number
  marker?: string
  memberStatus: string
  sortKeys: SortKey[]
  sortDirs: SortDir[]
  tags: string[]
  /** Every parameter not taken above, in order. */
  filters: QueryParams
}

// Python's int(): surrounding whitespace, a sign, digits with single underscores between them.
const PY_INT = /^\s*[+-]?\d+(?:_\d+)*\s*$/
function pyInt(s: string): number | undefined {
  return PY_INT.test(s) ? Number(s.replace(/_/g, '').trim()) : undefined
}

/** RequestDeserializer.index: Glance's checks of the query, in Glance's order. */
export function parseListRequest(query: QueryParams): ListRequest {
  const params = query.copy()
  const limit = params.pop('limit')
  const marker = params.pop('marker')
  const memberStatus = params.pop('member_status') ?? 'accepted'
  // Glance: several `tag` parameters rather than one with a separator; all must match.
  const tags: string[] = []
  while (params.has('tag')) tags.push(params.pop('tag')!.trim())

  // _get_filters
  const visibility = params.get('visibility')
  if (visibility && !LIST_VISIBILITIES.includes(visibility)) throw new BadRequest(`Invalid visibility value: ${visibility}`)
  if (params.get('changes-since')) throw new BadRequest('The "changes-since" filter is no longer available on v2.')
  // _validate_member_status
  if (!(MEMBER_STATUSES as readonly string[]).includes(memberStatus)) throw new BadRequest(`Invalid status: ${memberStatus}`)
  const out: ListRequest = { memberStatus, sortKeys: [], sortDirs: [], tags, filters: params }
  if (marker !== undefined) out.marker = marker
  if (limit !== undefined) out.limit = validateLimit(limit)
  if (tags.length > 0) params.delete('tags') // filters['tags'] = tags
  Object.assign(out, sortingParams(params))
  return out
}

function validateLimit(limit: string): number {
  const n = pyInt(limit)
  if (n === undefined) throw new BadRequest('limit param must be an integer')
  if (n < 0) throw new BadRequest('limit param must be positive')
  return n
}

function validateSortKey(key: string): SortKey {
  if (!(SORT_KEYS as readonly string[]).includes(key))
    throw new BadRequest(`Invalid sort key: ${key}. It must be one of the following: ${SORT_KEYS.join(', ')}.`)
  return key as SortKey
}

function validateSortDir(dir: string): SortDir {
  if (dir !== 'asc' && dir !== 'desc') throw new BadRequest(`Invalid sort direction: ${dir}`)
  return dir
}

/**
 * RequestDeserializer._get_sorting_params. The new syntax, `sort=name:asc,size` (a key without a
 * direction is `desc`), or the classic one, `sort_key=name&sort_key=size&sort_dir=asc` (one
 * `sort_dir` for every key, or one per key); never both.
 */
function sortingParams(params: QueryParams): { sortKeys: SortKey[]; sortDirs: SortDir[] } {
  const sortKeys: SortKey[] = []
  const sortDirs: SortDir[] = []
  if (params.has('sort')) {
    if (params.has('sort_key') || params.has('sort_dir')) throw new BadRequest('Old and new sorting syntax cannot be combined')
    for (const part of params.pop('sort')!.trim().split(',')) {
      const i = part.indexOf(':')
      const key = i < 0 ? part : part.slice(0, i)
      const dir = i < 0 ? '' : part.slice(i + 1)
      sortKeys.push(validateSortKey(key.trim()))
      sortDirs.push(validateSortDir(dir === '' ? 'desc' : dir.trim()))
    }
  } else {
    while (params.has('sort_key')) sortKeys.push(validateSortKey(params.pop('sort_key')!.trim()))
    while (params.has('sort_dir')) sortDirs.push(validateSortDir(params.pop('sort_dir')!.trim()))
    if (sortDirs.length > 1 && sortDirs.length !== sortKeys.length)
      throw new BadRequest('Number of sort dirs does not match the number of sort keys')
  }
  return { sortKeys: sortKeys.length > 0 ? sortKeys : ['created_at'], sortDirs: sortDirs.length > 0 ? sortDirs : ['desc'] }
}

/**
 * `_image_get_all`'s order: one direction given applies to every key and to the tie-breakers;
 * `created_at` then `id` end every order that lacks them, so that it is unique.
 */
export function listOrder(keys: readonly SortKey[], dirs: readonly SortDir[]): ImageListQuery['order'] {
  const fallback: SortDir = dirs.length === 1 ? dirs[0]! : 'desc'
  const order = keys.map((key, i) => ({ key, dir: dirs.length === 1 ? fallback : (dirs[i] ?? fallback) }))
  for (const key of ['created_at', 'id'] as const) if (!keys.includes(key)) order.push({ key, dir: fallback })
  return order
}

/** ImagesController.index: `os_hidden` (any case; hidden images are listed only when asked for) and `protected`. */
export function listFlags(filters: QueryParams): { hidden: boolean; protected?: boolean } {
  const hidden = (filters.get('os_hidden') ?? 'false').toLowerCase()
  if (hidden !== 'true' && hidden !== 'false')
    throw new BadRequest(`Invalid value '${hidden}' for 'os_hidden' filter. Valid values are 'true' or 'false'.`)
  const prot = filters.get('protected')
  if (prot !== undefined && prot !== 'true' && prot !== 'false')
    throw new BadRequest(`Invalid value '${prot}' for 'protected' filter. Valid values are 'true' or 'false'.`)
  return { hidden: hidden === 'true', ...(prot !== undefined ? { protected: prot === 'true' } : {}) }
}

const TEXT_COLUMNS = new Set<string>(['owner', 'visibility', 'checksum', 'os_hash_algo', 'os_hash_value'])
const INT_COLUMNS = new Set<string>(['size', 'virtual_size', 'min_disk', 'min_ram'])
const OP_COLUMNS = new Set<string>(['name', 'id', 'status', 'container_format', 'disk_format'])
// Attributes of Glance's Image model that are no column of a listed image's value: its relations
// (compared with a string, SQLAlchemy fails: Glance answers 500) and `deleted_at` (NULL for
// every listed image). Skiff matches nothing rather than fail.
const NEVER_EQUAL = new Set<string>(['deleted_at', 'properties', 'locations', 'members', 'tags'])
const TIME_OPS: readonly string[] = ['gt', 'gte', 'lt', 'lte', 'neq', 'eq'] satisfies TimeOp[]

/**
 * `_image_get_all` and `_make_conditions_from_filters`: the filters as conditions, checked in the
 * order they came. The flags come from listFlags (the controller replaced them in the filters).
 */
export function listConditions(
  filters: QueryParams,
  tags: readonly string[],
  flags: { hidden: boolean; protected?: boolean },
): { visibility?: string; conditions: ImageCondition[] } {
  const f = filters.copy()
  for (const k of ['os_hidden', 'protected', 'deleted']) f.delete(k)
  const visibility = f.pop('visibility')
  const conditions: ImageCondition[] = [{ kind: 'flag', column: 'os_hidden', value: flags.hidden }]
  for (const column of ['checksum', 'os_hash_value'] as const) {
    const v = f.pop(column)
    if (v !== undefined) conditions.push({ kind: 'text', column, value: v })
  }
  // Glance iterates what it has for tags: the `tag` parameters, or else `tags`' characters.
  const tagValue = tags.length > 0 ? undefined : f.pop('tags')
  for (const t of tags.length > 0 ? tags : [...(tagValue ?? '')]) conditions.push({ kind: 'tag', value: t })

  for (const [k, v] of f.lastValues()) {
    if (k.endsWith('_min') || k.endsWith('_max')) {
      const n = pyInt(v)
      if (n === undefined) throw new BadRequest('Unable to filter on a range with a non-numeric value.')
      const column = k.slice(0, -4)
      // Glance compares whatever attribute this names (a 500 for one it lacks): Skiff only numbers.
      if (!INT_COLUMNS.has(column)) throw new BadRequest('Unable to filter using the specified range.')
      const bound = Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, n))
      conditions.push({ kind: 'int', column: column as IntColumn, op: k.endsWith('_min') ? '>=' : '<=', value: bound })
    } else if (k === 'created_at' || k === 'updated_at') {
      const [op, iso] = splitFilterOp(v)
      const at = parseIsoTime(iso)
      if (at === undefined) throw new BadRequest(`Bad "${k}" query filter format. Use ISO 8601 DateTime notation.`)
      if (!TIME_OPS.includes(op)) throw new BadRequest('Unable to filter on a unknown operator.')
      conditions.push({ kind: 'time', column: k, op: op as TimeOp, at })
    } else if (OP_COLUMNS.has(k)) {
      const [op, value] = splitFilterOp(v)
      if (op === 'in') conditions.push({ kind: 'text-in', column: k as TextColumn, values: splitFilterValueForQuotes(value) })
      else if (op === 'eq') conditions.push({ kind: 'text', column: k as TextColumn, value })
      else throw new BadRequest(`Unable to filter by unknown operator '${op}'.`)
    } else if (TEXT_COLUMNS.has(k)) {
      conditions.push({ kind: 'text', column: k as TextColumn, value: v })
    } else if (INT_COLUMNS.has(k)) {
      // MariaDB compares a number with the text as a number; text that is none matches nothing here.
      const n = v.trim() === '' ? NaN : Number(v)
      conditions.push(Number.isFinite(n) ? { kind: 'int', column: k as IntColumn, op: '=', value: n } : { kind: 'none' })
    } else if (NEVER_EQUAL.has(k)) {
      conditions.push({ kind: 'none' })
    } else {
      // Any other name is an extra property's: it must exist with that value.
      conditions.push({ kind: 'property', name: k, value: v })
    }
  }
  if (flags.protected !== undefined) conditions.push({ kind: 'flag', column: 'protected', value: flags.protected })
  return { ...(visibility !== undefined ? { visibility } : {}), conditions }
}

/**
 * glance/common/utils.py split_filter_op: `gte:2026-01-01T00:00:00Z` → ['gte', '2026-…'];
 * no operator is `eq`, and neither is a bare ISO 8601 time with its own colons.
 */
export function splitFilterOp(expression: string): [string, string] {
  const i = expression.indexOf(':')
  if (i < 0) return ['eq', expression]
  if (parseIsoTime(expression) !== undefined) return ['eq', expression]
  return [expression.slice(0, i), expression.slice(i + 1)]
}

/** glance/common/utils.py validate_quotes: quoted values of an `in:` list stand between commas. */
function validateQuotes(value: string): void {
  let open = true
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== '"') continue
    if (i > 0 && value[i - 1] === '\\') continue
    if (open) {
      if (i > 0 && value[i - 1] !== ',')
        throw new BadRequest(`Invalid filter value ${value}. There is no comma before opening quotation mark.`)
    } else if (i + 1 !== value.length && value[i + 1] !== ',') {
      throw new BadRequest(`Invalid filter value ${value}. There is no comma after closing quotation mark.`)
    }
    open = !open
  }
  if (!open) throw new BadRequest(`Invalid filter value ${value}. The quote is not closed.`)
}

/** glance/common/utils.py split_filter_value_for_quotes: `in:a,"b,c",d` → ['a', 'b,c', 'd'] (escapes kept). */
export function splitFilterValueForQuotes(value: string): string[] {
  validateQuotes(value)
  const re = /"([^"\\]*(?:\\.[^"\\]*)*)",?|([^,]+),?|,/g
  return [...value.matchAll(re)].map((m) => m[1] || m[2] || '')
}

// The iso8601 package's pattern (oslo_utils.timeutils.parse_isotime), as Glance parses times.
const ISO8601 = new RegExp(
  '^(?<year>[0-9]{4})(((-(?<monthdash>[0-9]{1,2}))|(?<month>[0-9]{2})(?!$))(((-(?<daydash>[0-9]{1,2}))|(?<day>[0-9]{2}))' +
    '(((?<separator>[ T])(?<hour>[0-9]{2})(:{0,1}(?<minute>[0-9]{2})){0,1}(:{0,1}(?<second>[0-9]{1,2})([.,](?<fraction>[0-9]+)){0,1}){0,1}' +
    '(?<timezone>Z|((?<tzsign>[-+])(?<tzhour>[0-9]{2}):{0,1}(?<tzminute>[0-9]{2}){0,1})){0,1}){0,1})){0,1}){0,1}\\n?$',
)

/**
 * oslo_utils.timeutils.parse_isotime then normalize_time: UTC (a time without a zone is UTC), as
 * `YYYY-MM-DDTHH:MM:SS` and `.ffffff` when it has a fraction; undefined where Python raises.
 */
export function parseIsoTime(s: string): string | undefined {
  const g = ISO8601.exec(s)?.groups
  if (!g) return undefined
  const int = (v: string | undefined, d: number) => (v === undefined ? d : Number(v))
  const year = int(g.year, 0)
  const month = int(g.month ?? g.monthdash, 1)
  const day = int(g.day ?? g.daydash, 1)
  const hour = int(g.hour, 0)
  const minute = int(g.minute, 0)
  const second = int(g.second, 0)
  // Decimal('0.' + digits) * 10**6, truncated.
  const micros = g.fraction === undefined ? 0 : Number(`${g.fraction}000000`.slice(0, 6))
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  const monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > monthDays || hour > 23 || minute > 59 || second > 59) return undefined
  let offsetMinutes = 0
  if (g.timezone !== undefined && g.timezone !== 'Z') {
    offsetMinutes = (g.tzsign === '-' ? -1 : 1) * (int(g.tzhour, 0) * 60 + int(g.tzminute, 0))
    // datetime.timezone: strictly less than a day.
    if (Math.abs(offsetMinutes) >= 24 * 60) return undefined
  }
  const d = new Date(0)
  d.setUTCFullYear(year, month - 1, day)
  d.setUTCHours(hour, minute - offsetMinutes, second, 0)
  const y = d.getUTCFullYear()
  // Out of datetime's range once normalized (Python raises OverflowError: Glance answers 500).
  if (y < 1 || y > 9999) return undefined
  const p = (n: number, w = 2) => String(n).padStart(w, '0')
  const base = `${p(y, 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`
  return micros === 0 ? base : `${base}.${p(micros, 6)}`
}
