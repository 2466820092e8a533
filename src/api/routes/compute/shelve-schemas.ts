// Request schemas of createImage, createBackup and unshelve, as Nova's schemas/servers.py,
// create_backup.py and shelve.py (suspend, resume, shelve and shelveOffload take any value).
import { Type, type TSchema } from '@sinclair/typebox'
import { atVersion } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'

// parameter_types.name and metadata, as schemas.ts has them (not imported: schemas.ts imports this file).
const NAME = Type.String({ minLength: 1, maxLength: 255, format: 'name' })
const METADATA = Type.Object(
  {},
  { patternProperties: { '^[a-zA-Z0-9-_:. ]{1,255}$': Type.String({ maxLength: 255 }) }, additionalProperties: false },
)

// parameter_types.non_negative_integer: one type list, for Nova's one-type error message.
const NON_NEGATIVE_INTEGER = Type.Unsafe<number | string>({ type: ['integer', 'string'], pattern: '^[0-9]*$', minimum: 0, minLength: 1 })

const CREATE_IMAGE = Type.Object({ name: NAME, metadata: Type.Optional(METADATA) }, { additionalProperties: false })
const CREATE_BACKUP = Type.Object(
  { name: NAME, backup_type: Type.String(), rotation: NON_NEGATIVE_INTEGER, metadata: Type.Optional(METADATA) },
  { additionalProperties: false },
)
// 2.77: null, or an object that names the zone ({} is refused); 2.91: zone (or null) and/or host.
const UNSHELVE_V277 = Type.Unsafe<{ availability_zone: string } | null>({
  type: ['object', 'null'],
  properties: { availability_zone: NAME },
  required: ['availability_zone'],
  additionalProperties: false,
})
const UNSHELVE_V291 = Type.Unsafe<{ availability_zone?: string | null; host?: string } | null>({
  type: ['object', 'null'],
  properties: { availability_zone: { type: ['string', 'null'] }, host: { type: 'string' } },
  additionalProperties: false,
})
const ANY = Type.Unknown()

export const SHELVE_ACTION_SCHEMAS: Record<string, TSchema | ((v: Microversion) => TSchema)> = {
  createImage: CREATE_IMAGE,
  createBackup: CREATE_BACKUP,
  unshelve: (v) =>
    atVersion<TSchema>(v, ANY, [
      ['unshelveAvailabilityZone', UNSHELVE_V277],
      ['unshelveToHost', UNSHELVE_V291],
    ]),
}
