// Turns an Ajv error into the message Nova's jsonschema validation gives, word for word:
//   "Invalid input for field/attribute <field>. Value: <value>. <jsonschema message>"
import { INVALID_NAME_FORMATS } from './formats.ts'
import { pyRepr, pyStr } from './py-repr.ts'

export interface AjvError {
  instancePath: string
  keyword: string
  params: Record<string, unknown>
  message?: string
  data?: unknown
  schema?: unknown
  parentSchema?: { type?: unknown; enum?: unknown[]; format?: string; pattern?: string; [k: string]: unknown }
}

function jsonschemaMessage(e: AjvError): string {
  const data = e.data
  switch (e.keyword) {
    case 'type': {
      const t = e.params.type
      const types = Array.isArray(t) ? t : String(t).split(',')
      return `${pyRepr(data)} is not of type ${types.map((x) => `'${x}'`).join(', ')}`
    }
    case 'required':
      return `'${String(e.params.missingProperty)}' is a required property`
    case 'additionalProperties': {
      const extra = Object.keys((data ?? {}) as object).filter((k) => {
        const props = (e.parentSchema?.properties ?? {}) as Record<string, unknown>
        const patterns = Object.keys((e.parentSchema?.patternProperties ?? {}) as object).map((p) => new RegExp(p))
        return !Object.hasOwn(props, k) && !patterns.some((p) => p.test(k))
      })
      const list = (extra.length ? extra : [String(e.params.additionalProperty)]).map((k) => `'${k}'`).join(', ')
      return `Additional properties are not allowed (${list} ${extra.length > 1 ? 'were' : 'was'} unexpected)`
    }
    case 'format':
      return `${pyRepr(data)} is not a '${String(e.params.format)}'`
    case 'enum':
      return `${pyRepr(data)} is not one of ${pyRepr(e.params.allowedValues)}`
    case 'const':
      return `${pyRepr(e.params.allowedValue)} was expected`
    case 'minLength':
      return `${pyRepr(data)} is too short`
    case 'maxLength':
      return `${pyRepr(data)} is too long`
    case 'pattern':
      return `${pyRepr(data)} does not match '${String(e.params.pattern)}'`
    case 'minimum':
      return `${pyRepr(data)} is less than the minimum of ${String(e.params.limit)}`
    case 'maximum':
      return `${pyRepr(data)} is greater than the maximum of ${String(e.params.limit)}`
    case 'minItems':
      return `${pyRepr(data)} is too short`
    case 'maxItems':
      return `${pyRepr(data)} is too long`
    case 'minProperties':
      return `${pyRepr(data)} does not have enough properties`
    case 'maxProperties':
      return `${pyRepr(data)} has too many properties`
    case 'uniqueItems':
      return `${pyRepr(data)} has non-unique elements`
    case 'anyOf':
    case 'oneOf':
      return `${pyRepr(data)} is not valid under any of the given schemas`
    default:
      return e.message ?? 'is invalid'
  }
}

/** Nova's validation message for the first error. */
export function novaValidationMessage(errors: AjvError[]): string {
  // Ajv reports the deepest branch of anyOf/oneOf first; jsonschema reports the anyOf itself
  // only when no branch applies. Prefer a type error on the same path, as jsonschema does.
  const first = errors[0]
  if (!first) return 'Invalid input'
  const segments = first.instancePath
    .split('/')
    .filter(Boolean)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  // A format that raises InvalidName: Nova gives that exception's message alone.
  const invalidName = first.keyword === 'format' ? INVALID_NAME_FORMATS[String(first.params.format)] : undefined
  if (invalidName && typeof first.data === 'string') {
    return `An invalid 'name' value was provided. The name must be: ${invalidName(first.data)}`
  }
  const message = jsonschemaMessage(first)
  if (segments.length === 0) return message
  const field = segments[segments.length - 1]!
  return `Invalid input for field/attribute ${field}. Value: ${pyStr(first.data)}. ${message}`
}

/**
 * Nova's message for a query parameter (its query schemas see each parameter as a list of
 * values): "Invalid input for query parameters <name>. Value: <value>. <message>".
 */
export function novaQueryMessage(errors: AjvError[]): string {
  const first = errors[0]
  if (!first) return 'Invalid input'
  const name = first.instancePath.split('/').filter(Boolean)[0]
  const message = jsonschemaMessage(first)
  if (name === undefined) return message
  return `Invalid input for query parameters ${name.replace(/~1/g, '/').replace(/~0/g, '~')}. Value: ${pyStr(first.data)}. ${message}`
}
