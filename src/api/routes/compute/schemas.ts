// Request schemas of the compute API at each microversion, after Nova's (nova/api/openstack/compute/schemas).
import { Type, type TSchema } from '@sinclair/typebox'
import { BadRequest } from '../../../errors.ts'
import { ajv } from '../../ajv.ts'
import type { Microversion } from '../../microversion.ts'
import { atVersion } from '../../microversion-changes.ts'
import { novaValidationMessage, type AjvError } from '../../validation.ts'
import { SHELVE_ACTION_SCHEMAS } from './shelve-schemas.ts'

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

// Microversion 2.19's description: printable, up to 255, null allowed (clears it).
const DESCRIPTION = Type.Union([Type.String({ maxLength: 255, pattern: '^[^\\p{Cc}]*$' }), Type.Null()])
// 2.26's tag: no comma, no slash, up to 60 (Nova's MAX_TAG_LENGTH).
export const TAG = Type.String({ minLength: 1, maxLength: 60, pattern: '^[^,/]*$' })
export const MAX_TAG_COUNT = 50
// 2.63: a list of up to 50 unique ids; null (rebuild) resets them.
const TRUSTED_CERTS = Type.Unsafe<string[] | null>({
  type: ['array', 'null'],
  minItems: 1,
  maxItems: 50,
  uniqueItems: true,
  items: { type: 'string', minLength: 1 },
})
// 2.90's hostname (RFC 952/1123, 2 to 63) and 2.74's host / hypervisor_hostname (fqdn).
const HOSTNAME = Type.String({ minLength: 2, maxLength: 63, pattern: '^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$' })
const FQDN = Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9-._]*$' })
const USER_DATA = Type.String({ maxLength: 65535 })
const PERSONALITY = Type.Array(Type.Object({ path: Type.String(), contents: Type.String() }, { additionalProperties: false }))

// parameter_types.ip_address: an IPv4 or IPv6 address (oneOf the two formats).
const IP_ADDRESS = Type.Unsafe<string>({
  type: 'string',
  oneOf: [
    { type: 'string', format: 'ipv4' },
    { type: 'string', format: 'ipv6' },
  ],
})
const networkItem = (uuid: TSchema, withTag: boolean) =>
  Type.Object(
    {
      fixed_ip: Type.Optional(IP_ADDRESS),
      port: Type.Optional(Type.Union([Type.String({ format: 'uuid' }), Type.Null()])),
      uuid: Type.Optional(uuid),
      ...(withTag ? { tag: Type.Optional(TAG) } : {}),
    },
    { additionalProperties: false },
  )
// Below 2.37 a list (uuid any string); from 2.37 required, a list of uuids or 'auto' / 'none'
// (Nova's oneOf). A network's device tag: at 2.32 to 2.36 (create_v232, create_v233), not at 2.37
// to 2.41 (create_v237 replaced the list without it), again from 2.42 (create_v242).
const NETWORKS_V21 = Type.Array(networkItem(Type.String(), false))
const NETWORKS_V232 = Type.Array(networkItem(Type.String(), true))
const networksOneOf = (withTag: boolean) =>
  Type.Unsafe<unknown>({
    oneOf: [Type.Array(networkItem(Type.String({ format: 'uuid' }), withTag)), { type: 'string', enum: ['none', 'auto'] }],
  })
const NETWORKS_V237 = networksOneOf(false)
const NETWORKS_V242 = networksOneOf(true)

// Block device mapping v2 (nova/api/openstack/compute/schemas/servers.py: the legacy item's keys
// and the v2 ones); `tag` from 2.32.
const BDM_V2_ITEM = {
  virtual_name: Type.Optional(Type.String({ maxLength: 255 })),
  volume_id: Type.Optional(Type.String({ format: 'uuid' })),
  snapshot_id: Type.Optional(Type.String({ format: 'uuid' })),
  volume_size: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' }), Type.Null()])),
  device_name: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9._/-]*$' })),
  delete_on_termination: Type.Optional(BOOLEAN),
  no_device: Type.Optional(Type.Unknown()),
  connection_info: Type.Optional(Type.String({ maxLength: 16777215 })),
  source_type: Type.Optional(Type.Unsafe<string>({ type: 'string', enum: ['volume', 'image', 'snapshot', 'blank'] })),
  uuid: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9._-]*$' })),
  image_id: Type.Optional(Type.String({ format: 'uuid' })),
  destination_type: Type.Optional(Type.Unsafe<string>({ type: 'string', enum: ['local', 'volume'] })),
  guest_format: Type.Optional(Type.String({ maxLength: 255 })),
  device_type: Type.Optional(Type.String({ maxLength: 255 })),
  disk_bus: Type.Optional(Type.String({ maxLength: 255 })),
  boot_index: Type.Optional(Type.Union([Type.Integer(), Type.String({ pattern: '^-?[0-9]+$' }), Type.Null()])),
} as Record<string, TSchema>
const bdmV2 = (withTag: boolean) =>
  Type.Array(Type.Object({ ...BDM_V2_ITEM, ...(withTag ? { tag: Type.Optional(TAG) } : {}) }, { additionalProperties: false }))

const CREATE_V21 = {
  name: NAME,
  imageRef: Type.Optional(Type.Union([Type.String({ format: 'uuid' }), Type.String({ maxLength: 0 })])),
  flavorRef: Type.Union([Type.String({ minLength: 1 }), Type.Integer()]),
  adminPass: Type.Optional(ADMIN_PASSWORD),
  metadata: Type.Optional(METADATA),
  networks: Type.Optional(NETWORKS_V21) as TSchema,
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
  user_data: Type.Optional(USER_DATA),
  personality: Type.Optional(PERSONALITY),
  block_device_mapping_v2: Type.Optional(bdmV2(false)),
} as Record<string, TSchema>

/** The create body, `server` holding `props` (Nova's create_v2xx: each a copy of the one before, changed). */
const createBody = (props: Record<string, TSchema>) =>
  Type.Object(
    {
      server: Type.Object(props, { additionalProperties: false }),
      'os:scheduler_hints': Type.Optional(SCHEDULER_HINTS),
      'OS-SCH-HNT:scheduler_hints': Type.Optional(SCHEDULER_HINTS),
    },
    { additionalProperties: false },
  )
const without = (o: Record<string, TSchema>, key: string) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key))

const C219 = { ...CREATE_V21, description: Type.Optional(DESCRIPTION) }
const C232 = { ...C219, networks: Type.Optional(NETWORKS_V232), block_device_mapping_v2: Type.Optional(bdmV2(true)) }
// Nova's create_v237 copies create_v233, whose BDMs have no tag; 2.42 gives it back.
const C237 = { ...C232, networks: NETWORKS_V237, block_device_mapping_v2: Type.Optional(bdmV2(false)) }
const C242 = { ...C237, networks: NETWORKS_V242, block_device_mapping_v2: Type.Optional(bdmV2(true)) }
const C252 = { ...C242, tags: Type.Optional(Type.Array(TAG, { maxItems: MAX_TAG_COUNT })) }
const C257 = without(C252, 'personality')
const C263 = { ...C257, trusted_image_certificates: Type.Optional(TRUSTED_CERTS) }
const C274 = { ...C263, host: Type.Optional(FQDN), hypervisor_hostname: Type.Optional(FQDN) }
const C290 = { ...C274, hostname: Type.Optional(HOSTNAME) }

type Bool = boolean | string
/** One item of block_device_mapping_v2, as the schema passed it. */
export interface BdmV2Request {
  source_type?: string
  destination_type?: string
  uuid?: string
  volume_id?: string
  snapshot_id?: string
  image_id?: string
  volume_size?: number | string | null
  device_name?: string
  delete_on_termination?: Bool
  boot_index?: number | string | null
  tag?: string
}
/** A server's create body at the widest (what the route reads once a version's schema passed it). */
export interface CreateServerRequest {
  server: {
    name: string
    imageRef?: string
    flavorRef: string | number
    adminPass?: string
    metadata?: Record<string, string>
    networks?: { fixed_ip?: string; port?: string | null; uuid?: string; tag?: string }[] | 'auto' | 'none'
    'OS-DCF:diskConfig'?: string
    accessIPv4?: string
    accessIPv6?: string
    key_name?: string
    availability_zone?: string
    config_drive?: Bool
    min_count?: number | string
    max_count?: number | string
    return_reservation_id?: Bool
    security_groups?: { name: string }[]
    user_data?: string
    personality?: { path: string; contents: string }[]
    description?: string | null
    tags?: string[]
    trusted_image_certificates?: string[] | null
    host?: string
    hypervisor_hostname?: string
    hostname?: string
    block_device_mapping_v2?: BdmV2Request[]
  }
  'os:scheduler_hints'?: { group?: string }
  'OS-SCH-HNT:scheduler_hints'?: { group?: string }
}
const CREATE_SCHEMAS = {
  v21: createBody(CREATE_V21),
  v219: createBody(C219),
  v232: createBody(C232),
  v237: createBody(C237),
  v242: createBody(C242),
  v252: createBody(C252),
  v257: createBody(C257),
  v263: createBody(C263),
  v274: createBody(C274),
  v290: createBody(C290),
}
/** POST /servers' schema at `v` (Nova's `@validation.schema(create_v2xx, min, max)` ladder). */
export const createServerSchema = (v: Microversion): TSchema =>
  atVersion(v, CREATE_SCHEMAS.v21, [
    ['serverDescription', CREATE_SCHEMAS.v219],
    ['deviceTagsAtBoot', CREATE_SCHEMAS.v232],
    ['networksRequired', CREATE_SCHEMAS.v237],
    ['deviceTagsRestored', CREATE_SCHEMAS.v242],
    ['tagsAtCreate', CREATE_SCHEMAS.v252],
    ['personalityRemoved', CREATE_SCHEMAS.v257],
    ['trustedImageCertificates', CREATE_SCHEMAS.v263],
    ['createOnHost', CREATE_SCHEMAS.v274],
    ['serverHostname', CREATE_SCHEMAS.v290],
  ])

const UPDATE_V21 = {
  name: Type.Optional(NAME),
  accessIPv4: Type.Optional(Type.String({ format: 'ipv4' })),
  accessIPv6: Type.Optional(Type.String({ format: 'ipv6' })),
  'OS-DCF:diskConfig': Type.Optional(DISK_CONFIG),
} as Record<string, TSchema>
const updateBody = (props: Record<string, TSchema>) =>
  Type.Object({ server: Type.Object(props, { additionalProperties: false }) }, { additionalProperties: false })
const U219 = { ...UPDATE_V21, description: Type.Optional(DESCRIPTION) }
const U290 = { ...U219, hostname: Type.Optional(HOSTNAME) }
export interface UpdateServerRequest {
  server: { name?: string; accessIPv4?: string; accessIPv6?: string; description?: string | null; hostname?: string }
}
const UPDATE_SCHEMAS = { v21: updateBody(UPDATE_V21), v219: updateBody(U219), v290: updateBody(U290) }
/** PUT /servers/{id}'s schema at `v`. */
export const updateServerSchema = (v: Microversion): TSchema =>
  atVersion(v, UPDATE_SCHEMAS.v21, [
    ['serverDescription', UPDATE_SCHEMAS.v219],
    ['serverHostname', UPDATE_SCHEMAS.v290],
  ])

const REBUILD_V21 = {
  imageRef: Type.String({ minLength: 1 }),
  name: Type.Optional(NAME),
  adminPass: Type.Optional(ADMIN_PASSWORD),
  metadata: Type.Optional(METADATA),
  preserve_ephemeral: Type.Optional(Type.Boolean()),
  'OS-DCF:diskConfig': Type.Optional(DISK_CONFIG),
  accessIPv4: Type.Optional(Type.String({ format: 'ipv4' })),
  accessIPv6: Type.Optional(Type.String({ format: 'ipv6' })),
  personality: Type.Optional(Type.Array(Type.Unknown())),
} as Record<string, TSchema>
const rebuildAction = (props: Record<string, TSchema>) => Type.Object(props, { additionalProperties: false })
const R219 = { ...REBUILD_V21, description: Type.Optional(DESCRIPTION) }
const R254 = { ...R219, key_name: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 255 }), Type.Null()])) }
const R257 = { ...without(R254, 'personality'), user_data: Type.Optional(Type.Union([USER_DATA, Type.Null()])) }
const R263 = { ...R257, trusted_image_certificates: Type.Optional(TRUSTED_CERTS) }
const R290 = { ...R263, hostname: Type.Optional(HOSTNAME) }
const REBUILD_SCHEMAS = {
  v21: rebuildAction(REBUILD_V21),
  v219: rebuildAction(R219),
  v254: rebuildAction(R254),
  v257: rebuildAction(R257),
  v263: rebuildAction(R263),
  v290: rebuildAction(R290),
}
// Lock takes a reason from 2.73 (below, any body: Nova has no schema there).
const LOCK_V273 = Type.Unsafe<{ locked_reason?: string } | null>({
  type: ['object', 'null'],
  properties: { locked_reason: { type: 'string', minLength: 1, maxLength: 255 } },
  additionalProperties: false,
})
const ANY = Type.Unknown()

// Moves (resize, migrate, os-migrateLive, evacuate): nova/api/openstack/compute/schemas/{servers,
// migrate_server,evacuate}.py. Nova's parameter_types.boolean is one enum of booleans and strings.
const BOOL_VALUES = [
  true,
  'True',
  'TRUE',
  'true',
  '1',
  'ON',
  'On',
  'on',
  'YES',
  'Yes',
  'yes',
  false,
  'False',
  'FALSE',
  'false',
  '0',
  'OFF',
  'Off',
  'off',
  'NO',
  'No',
  'no',
]
const NOVA_BOOLEAN = Type.Unsafe<boolean | string>({ enum: BOOL_VALUES })
const BLOCK_MIGRATION_V225 = Type.Unsafe<boolean | string>({ enum: [...BOOL_VALUES, 'auto'] })
const MOVE_HOST = Type.Unsafe<string | null>({ type: ['string', 'null'], minLength: 1, maxLength: 255, pattern: '^[a-zA-Z0-9-._]*$' })
const RESIZE = Type.Object(
  { flavorRef: Type.Union([Type.String({ minLength: 1 }), Type.Integer()]), 'OS-DCF:diskConfig': Type.Optional(DISK_CONFIG) },
  { additionalProperties: false },
)
const MIGRATE_V256 = Type.Unsafe<{ host?: string | null } | null>({
  type: ['object', 'null'],
  properties: { host: MOVE_HOST },
  additionalProperties: false,
})
const LIVE_V21 = Type.Object(
  { block_migration: NOVA_BOOLEAN, disk_over_commit: NOVA_BOOLEAN, host: MOVE_HOST },
  { additionalProperties: false },
)
const LIVE_V225 = Type.Object({ block_migration: BLOCK_MIGRATION_V225, host: MOVE_HOST }, { additionalProperties: false })
const LIVE_V230 = Type.Object(
  { block_migration: BLOCK_MIGRATION_V225, host: MOVE_HOST, force: Type.Optional(NOVA_BOOLEAN) },
  { additionalProperties: false },
)
const EVACUATE_V21 = Type.Object(
  { host: Type.Optional(FQDN), onSharedStorage: NOVA_BOOLEAN, adminPass: Type.Optional(ADMIN_PASSWORD) },
  { additionalProperties: false },
)
const EVACUATE_V214 = Type.Object({ host: Type.Optional(FQDN), adminPass: Type.Optional(ADMIN_PASSWORD) }, { additionalProperties: false })
const EVACUATE_V229 = Type.Object(
  { host: Type.Optional(FQDN), adminPass: Type.Optional(ADMIN_PASSWORD), force: Type.Optional(NOVA_BOOLEAN) },
  { additionalProperties: false },
)
/** Nova's strutils.bool_from_string(strict=True) on a value the schema let through. */
export const novaBool = (v: unknown): boolean =>
  v === true || (typeof v === 'string' && ['true', '1', 'on', 'yes'].includes(v.toLowerCase()))

/**
 * Action schemas, by action name; an action absent here takes any value (as Nova). Where the
 * schema depends on the microversion, a function of it (built with atVersion, microversion-changes.ts).
 */
export const ACTION_SCHEMAS: Record<string, TSchema | ((v: Microversion) => TSchema)> = {
  // createImage, createBackup, unshelve (shelve-schemas.ts)
  ...SHELVE_ACTION_SCHEMAS,
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
  rebuild: (v) =>
    atVersion(v, REBUILD_SCHEMAS.v21, [
      ['serverDescription', REBUILD_SCHEMAS.v219],
      ['rebuildKeyName', REBUILD_SCHEMAS.v254],
      ['personalityRemoved', REBUILD_SCHEMAS.v257],
      ['trustedImageCertificates', REBUILD_SCHEMAS.v263],
      ['serverHostname', REBUILD_SCHEMAS.v290],
    ]),
  lock: (v) => atVersion<TSchema>(v, ANY, [['lockedReason', LOCK_V273]]),
  resize: RESIZE,
  // Below 2.56 migrate takes any value (Nova has no schema there).
  migrate: (v) => atVersion<TSchema>(v, ANY, [['migrateToHost', MIGRATE_V256]]),
  'os-migrateLive': (v) =>
    atVersion<TSchema>(v, LIVE_V21, [
      ['blockMigrationAuto', LIVE_V225],
      ['liveMigrateForce', LIVE_V230],
      ['forceRemoved', LIVE_V225],
    ]),
  evacuate: (v) =>
    atVersion<TSchema>(v, EVACUATE_V21, [
      ['evacuateWithoutSharedStorage', EVACUATE_V214],
      ['evacuateForce', EVACUATE_V229],
      ['forceRemoved', EVACUATE_V214],
    ]),
  // admin_actions.reset_state: {"state": "active" | "error"}.
  'os-resetState': Type.Object({ state: enumOf(['active', 'error']) }, { additionalProperties: false }),
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

// By action and schema: one schema object (ANY) serves several actions, each its own body.
const actionBodies = new Map<string, Map<TSchema, object>>()
/** Validate `{action: value}` at microversion `v` as Nova does; throws Nova's 400. */
export function validateAction(action: string, body: Record<string, unknown>, v: Microversion): void {
  const entry = ACTION_SCHEMAS[action]
  if (!entry) return
  const schema = typeof entry === 'function' ? entry(v) : entry
  let byAction = actionBodies.get(action)
  if (!byAction) actionBodies.set(action, (byAction = new Map<TSchema, object>()))
  let whole = byAction.get(schema)
  if (!whole) {
    whole = { type: 'object', properties: { [action]: schema }, required: [action], additionalProperties: false }
    byAction.set(schema, whole)
  }
  validateBody(whole, body)
}
