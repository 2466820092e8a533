// The one Ajv configuration: the schemas of every listener's routes (fastify's validator
// compiler) and the server actions dispatched by hand (routes/compute/schemas.ts) compile with
// the same options and the same formats. fastify's own compiler would load ajv-formats over
// FORMATS (its uuid requires dashes where Nova's does not), so the listeners use this one.
import Ajv from 'ajv'
import { FORMATS } from './formats.ts'

export const ajv = new Ajv.default({
  // Unknown fields are rejected, as Nova does (fastify's default strips them silently).
  removeAdditional: false,
  // Bodies are never coerced: `{"adminPass": 123}` must be refused, not turned into "123".
  coerceTypes: false,
  useDefaults: false,
  // The failing value and schema, for Nova's word-for-word messages (validation.ts).
  verbose: true,
  // The first error only, as jsonschema reports it (and no work for an attacker's many errors).
  allErrors: false,
  // As fastify's compiler: schemas with an $id are not kept by it (each app compiles its own).
  addUsedSchema: false,
  formats: FORMATS,
  // Nova's and Cinder's schemas name several types (`"type": ["string", "null"]`): plain JSON
  // Schema, which Ajv's strict mode would otherwise log about at every start.
  allowUnionTypes: true,
})

/** For fastify's setValidatorCompiler. */
export const compileSchema = ({ schema }: { schema: object }) => ajv.compile(schema)
