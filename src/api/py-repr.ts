// Python's str()/repr() of JSON values: Nova's validation messages quote values the way
// jsonschema (Python) prints them, e.g. "Value: {'foo': 'bar'}. 123 is not of type 'string'".

export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(v)
  if (typeof v === 'string') return v.includes("'") && !v.includes('"') ? `"${v}"` : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`
  if (typeof v === 'object') return `{${Object.entries(v as object).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`
  return String(v)
}

/** str(): strings bare, everything else as repr. */
export const pyStr = (v: unknown) => (typeof v === 'string' ? v : pyRepr(v))
