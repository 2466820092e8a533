// Keypair views per microversion (nova/api/openstack/compute/views/keypairs.py): `type` from
// 2.2 on; show and create carry user_id; show adds the database row's columns.
import { createHash } from 'node:crypto'
import { isoMicrosNoZone } from '../../../clock.ts'
import type { Keypair } from '../../../compute/keypair-service.ts'
import { has } from '../../microversion-changes.ts'
import type { Microversion } from '../../microversion.ts'

/** GET /os-keypairs: name, public_key, fingerprint (+ type from 2.2). */
export function keypairIndexView(k: Keypair, v: Microversion): Record<string, unknown> {
  const view: Record<string, unknown> = { name: k.name, public_key: k.public_key, fingerprint: k.fingerprint }
  if (has(v, 'keypairType')) view.type = k.type
  return view
}

/** POST /os-keypairs: the private key of a generated pair first, then the index keys and user_id. */
export function keypairCreateView(k: Keypair, v: Microversion, privateKey: string | undefined): Record<string, unknown> {
  const view: Record<string, unknown> = {}
  if (privateKey !== undefined) view.private_key = privateKey
  if (has(v, 'keypairType')) view.type = k.type
  Object.assign(view, { name: k.name, public_key: k.public_key, fingerprint: k.fingerprint, user_id: k.user_id })
  return view
}

/** GET /os-keypairs/{name}: the create keys and the row's created_at, deleted, deleted_at, id, updated_at. */
export function keypairShowView(k: Keypair, v: Microversion): Record<string, unknown> {
  const view: Record<string, unknown> = {
    name: k.name,
    public_key: k.public_key,
    fingerprint: k.fingerprint,
    user_id: k.user_id,
    created_at: isoMicrosNoZone(k.created_at),
    deleted: false,
    deleted_at: null,
    id: keypairId(k),
    updated_at: null,
  }
  if (has(v, 'keypairType')) view.type = k.type
  return view
}

/** Nova shows the row's integer id; a stable number derived from the owner and name will do. */
const keypairId = (k: Keypair) => parseInt(createHash('md5').update(`${k.user_id}/${k.name}`).digest('hex').slice(0, 7), 16)
