// Request schemas of the compute API at 2.1, after Nova's (nova/api/openstack/compute/schemas).
import { Type, type TSchema } from '@sinclair/typebox'
import { BadRequest } from '../../../errors.ts'
import { ajv } from '../../ajv.ts'
import type { Microversion } from '../../microversion.ts'
import { novaValidationMessage, type AjvError } from '../../validation.ts'

export const NAME = Type.String({ minLength: 1, maxLength: 255, format: 'name' })
const ADMIN_PASSWORD = Type.String()
export const METADATA = Type.Object(
  {},
  {
    patternProperties: { '^[a-zA-Z0-9-_:. ]{1,255}$': Type.String({ maxLength: 255 }) },
    additionalProperties: false,
  },
)
const POSITIVE_INTEGER = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]*$', minLength: 1 })])
/** A string enum reported as jsonschema does ("'x' is not one of [...]"). */
const enumOf = (values: string[]) => Type.Unsafe<string>({ type: 'string', enum: values })
const DISK_CONFIG = enumOf(['AUTO', 'MANUAL'])
const BOOLEAN = Type.Union([
  Type.Boolean(),
  Type.Literal('True'),
  Type.Literal('true'),
  Type.Literal('False'),
  Type.Literal('false'),
  Type.Literal('1'),
  Type.Literal('0'),
  Type.Literal('yes'),
  Type.Literal('no'),
  Type.Literal('on'),
  Type.Literal('off'),
])

// Nova relaxes the hints (additionalProperties: true) but checks the ones it knows.
const SCHEDULER_HINTS = Type.Object(
  {
    group: Type.Optional(Type.String({ format: 'uuid' })),
  },
  { additionalProperties: true },
)

export const CreateServerBody = Type.Object(
  {
    server: Type.Object(
      {
        name: NAME,
        imageRef: Type.Optional(Type.Union([Type.String({ format: 'uuid' }), Type.String({ maxLength: 0 })])),
        flavorRef: Type.Union([Type.String({ minLength: 1 }), Type.Integer()]),
        adminPass: Type.Optional(ADMIN_PASSWORD),
        metadata: Type.Optional(METADATA),
        networks: Type.Optional(
          Type.Array(
            Type.Object(
              {
                fixed_ip: Type.Optional(Type.String({ format: 'ipv4' })),
                port: Type.Optional(Type.Union([Type.String({ format: 'uuid' }), Type.Null()])),
                uuid: Type.Optional(Type.String()),
              },
              { additionalProperties: false },
            ),
          ),
        ),
        'OS-DCF:diskConfig': Type.Optional(DISK_CONFIG),
        accessIPv4: Type.Optional(Type.String({ format: 'ipv4' })),
        accessIPv6: Type.Optional(Type.String({ format: 'ipv6' })),
        key_name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        availability_zone: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        config_drive: Type.Optional(BOOLEAN),
        min_count: Type.Optional(POSITIVE_INTEGER),
        max_count: Type.Optional(POSITIVE_INTEGER),
        return_reservation_id: Type.Optional(BOOLEAN),
        security_groups: Type.Optional(Type.Array(Type.Object({ name: Type.String() }, { additionalProperties: false }))),
        user_data: Type.Optional(Type.String({ maxLength: 65535 })),
        personality: Type.Optional(
          Type.Array(Type.Object({ path: Type.String(), contents: Type.String() }, { additionalProperties: false })),
        ),
      },
      { additionalProperties: false },
    ),
    'os:scheduler_hints': Type.Optional(SCHEDULER_HINTS),
    'OS-SCH-HNT:scheduler_hints': Type.Optional(SCHEDULER_HINTS),
  },
  { additionalProperties: false },
)

export const UpdateServerBody = Type.Object(
  {
    server: Type.Object(
      {
        name: Type.Optional(NAME),
        accessIPv4: Type.Optional(Type.String({ format: 'ipv4' })),
        accessIPv6: Type.Optional(Type.String({ format: 'ipv6' })),
        'OS-DCF:diskConfig': Type.Optional(DISK_CONFIG),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
)

/**
 * Action schemas, by action name; an action absent here takes any value (as Nova). Where the
 * schema depends on the microversion, a function of it (built with atVersion, microversion-changes.ts).
 */
export const ACTION_SCHEMAS: Record<string, TSchema | ((v: Microversion) => TSchema)> = {
  // One type list, not a union: Nova's one-type error ("... is not of type 'object', 'null'").
  rescue: Type.Unsafe<{ adminPass?: string; rescue_image_ref?: string } | null>({
    type: ['object', 'null'],
    properties: { adminPass: { type: 'string' }, rescue_image_ref: { type: 'string', format: 'uuid' } },
    additionalProperties: false,
  }),
  reboot: Type.Object(
    {
      type: enumOf(['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']),
    },
    { additionalProperties: false },
  ),
  rebuild: Type.Object(
    {
      imageRef: Type.String({ minLength: 1 }),
      name: Type.Optional(NAME),
      adminPass: Type.Optional(ADMIN_PASSWORD),
      metadata: Type.Optional(METADATA),
      preserve_ephemeral: Type.Optional(Type.Boolean()),
      'OS-DCF:diskConfig': Type.Optional(DISK_CONFIG),
      accessIPv4: Type.Optional(Type.String({ format: 'ipv4' })),
      accessIPv6: Type.Optional(Type.String({ format: 'ipv6' })),
      personality: Type.Optional(Type.Array(Type.Unknown())),
    },
    { additionalProperties: false },
  ),
  'os-getConsoleOutput': Type.Object(
    {
      length: Type.Optional(Type.Union([Type.Integer({ minimum: -1 }), Type.String({ pattern: '^-?[0-9]+$' }), Type.Null()])),
    },
    { additionalProperties: false },
  ),
}

// Bodies we validate ourselves (server actions, and bodies whose schema depends on the
// microversion) compile with the listeners' Ajv (api/ajv.ts), each at its first use, not at start
// (see api/lazy-validators.ts).
const compiled = new WeakMap<object, ReturnType<typeof ajv.compile>>()

/** Validate `body` against `schema` as Nova's `@validation.schema` does; throws Nova's 400. */
export function validateBody(schema: object, body: unknown): void {
  let validate = compiled.get(schema)
  if (!validate) {
    validate = ajv.compile(schema)
    compiled.set(schema, validate)
  }
  if (!validate(body)) throw new BadRequest(novaValidationMessage(validate.errors as AjvError[]))
}

const actionBodies = new Map<TSchema, object>()
/** Validate `{action: value}` at microversion `v` as Nova does; throws Nova's 400. */
export function validateAction(action: string, body: Record<string, unknown>, v: Microversion): void {
  const entry = ACTION_SCHEMAS[action]
  if (!entry) return
  const schema = typeof entry === 'function' ? entry(v) : entry
  let whole = actionBodies.get(schema)
  if (!whole) {
    whole = { type: 'object', properties: { [action]: schema }, required: [action], additionalProperties: false }
    actionBodies.set(schema, whole)
  }
  validateBody(whole, body)
}
