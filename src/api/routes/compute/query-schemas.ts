// Query-string schemas of the compute API, per microversion range, as Nova's
// `@validation.query_schema(schema, min_version, max_version)`: each parameter is a list of
// values (webob's req.GET), unknown parameters pass until 2.75 (consistentServerViews) refuses them.
import { BadRequest } from '../../../errors.ts'
import { ajv } from '../../ajv.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'
import { novaQueryMessage, type AjvError } from '../../validation.ts'

export type Query = Record<string, string | string[] | undefined>

/** parameter_types.multi_params. */
export const multi = (schema: object) => ({ type: 'array', items: schema })
/** parameter_types.common_query_param. */
export const COMMON = multi({ type: 'string' })
/** parameter_types.non_negative_integer (a query value is always a string here). */
export const NON_NEGATIVE_INTEGER = { type: ['integer', 'string'], pattern: '^[0-9]*$', minimum: 0, minLength: 1 }
/** parameter_types.pagination_parameters. */
export const PAGINATION = { limit: multi(NON_NEGATIVE_INTEGER), marker: multi({ type: 'string' }) }

/** A query schema with these properties; additional ones refused from 2.75 on. */
export function querySchema(properties: Record<string, object>, v: Microversion): object {
  return { type: 'object', properties, additionalProperties: !has(v, 'consistentServerViews') }
}

const compiled = new Map<string, ReturnType<typeof ajv.compile>>()

/** Validate the query as Nova does; throws its 400. Returns the values as lists. */
export function validateQuery(schema: object, query: Query): Record<string, string[]> {
  const lists: Record<string, string[]> = {}
  for (const [k, v] of Object.entries(query)) if (v !== undefined) lists[k] = Array.isArray(v) ? v : [v]
  const key = JSON.stringify(schema)
  let validate = compiled.get(key)
  if (!validate) {
    validate = ajv.compile(schema)
    compiled.set(key, validate)
  }
  if (!validate(lists)) throw new BadRequest(novaQueryMessage(validate.errors as AjvError[]))
  return lists
}

/** The first value, as webob's req.GET.getall(name)[0]; a dict lookup (req.GET[name]) is the last: see `last`. */
export const first = (q: Record<string, string[]>, name: string) => q[name]?.[0]
export const last = (q: Record<string, string[]>, name: string) => q[name]?.[q[name].length - 1]
