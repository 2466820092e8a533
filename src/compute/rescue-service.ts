// Rescue and unrescue (the seed's operation): the rescue image and keys are decided and the
// password answered before the agent starts; a rescue record keeps what the readable rescue
// state and auto-exit need.
import { BadRequest, Conflict, NotFound } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { Sealer } from '../secrets.ts'
import type { RescuesRepo } from '../store/rescues-repo.ts'
import type { ImageRow } from '../store/schema.ts'
import type { ServersRepo } from '../store/servers-repo.ts'
import { InstanceInvalidState, InstanceIsLocked, UnsupportedRescueImage } from './errors.ts'
import { parsePublicKey, type KeypairService } from './keypair-service.ts'
import { generateInstancePassword } from './admin-pass.ts'
import { authorize } from './policy.ts'
import { checkRescuable, rescueDisks, stableRescueOf, type RescueDisk, type StableRescue } from './rescue-layout.ts'
import { RULES, type ServerActions } from './server-actions.ts'
import type { Rescue, Server, ServerAccess } from './server.ts'
import type { ImageLookup } from './server-service.ts'

/** What a rescue may ask for beyond Nova's action (the extension resource). */
export interface RescueRequest {
  adminPass?: string
  rescueImageRef?: string
  keyName?: string
  publicKey?: string
  /** Seconds after reaching RESCUE; null = never, undefined = the configured default. */
  autoUnrescueAfter?: number | null
  /** Keep the server's disk as it is when the rescue begins, so that unrescue can discard the rescue's changes. */
  checkpoint?: boolean
  /** Nova 2.87 (allow_bfv_rescue): a volume-backed server may be rescued with a stable-device rescue image. */
  allowVolumeBackedRescue?: boolean
}

/** A server's rescue as it is: the record, its image's name, where its SSH is reached, its disks. */
export interface RescueState {
  rescue: Rescue
  imageName: string | null
  access: ServerAccess | undefined
  stable: StableRescue | null
  disks: RescueDisk[]
}

export interface RescueServiceDeps {
  actions: ServerActions
  repo: ServersRepo
  rescues: RescuesRepo
  images: ImageLookup
  keypairs: KeypairService
  sealer: Sealer
  enableInstancePassword: boolean
  /** Used when the server's own image is gone. */
  defaultRescueImageName: string
  /** Default time a rescue lasts before Skiff unrescues it (Nova's rescue_timeout); 0 = never. */
  rescueTimeoutSeconds: number
  /** The volumes attached to a server besides its root, in attach order (the rescue keeps them). */
  attachedVolumes?: (serverId: string) => Promise<string[]>
}

export class RescueService {
  readonly #d: RescueServiceDeps

  constructor(deps: RescueServiceDeps) {
    this.#d = deps
  }

  /** Rescue: the password is answered now; the rescue image is decided now, never later. */
  async rescue(ctx: AuthContext, id: string, req: RescueRequest, requestId: string) {
    const s = await this.#d.actions.check(ctx, id, RULES.rescue)
    const image = await this.#rescueImage(ctx, s, req.rescueImageRef)
    const properties = parseProperties(image.properties)
    checkRescuable({
      serverId: s.id,
      imageRef: req.rescueImageRef,
      properties,
      // A server booted from a volume has no image of its own.
      volumeBacked: s.image_id === null,
      allowVolumeBackedRescue: req.allowVolumeBackedRescue ?? false,
    })
    const stable = stableRescueOf(properties)
    const authorizedKeys = await this.#rescueKeys(ctx, s.id, req)
    // Nova echoes a given password verbatim, even "" (its manager then generates another).
    const adminPass = req.adminPass ?? generateInstancePassword()
    const bootPass = adminPass === '' ? generateInstancePassword() : adminPass
    const auto = req.autoUnrescueAfter === undefined ? this.#d.rescueTimeoutSeconds || null : req.autoUnrescueAfter
    const payload = {
      rescueImageId: image.id,
      previousVmState: s.vm_state,
      previousPowerState: s.power_state,
      sealed: this.#d.sealer.seal({ adminPass: bootPass, authorizedKeys }),
      stable,
      checkpoint: req.checkpoint ?? false,
    }
    await this.#d.actions.begin(ctx, s, RULES.rescue, payload, requestId, {}, async (trx) => {
      await this.#d.rescues.insert(
        {
          server_id: s.id,
          image_id: image.id,
          request_id: requestId,
          user_id: ctx.userId,
          public_keys: JSON.stringify(authorizedKeys),
          auto_unrescue_seconds: auto,
          rescue_device: stable?.device ?? null,
          rescue_bus: stable?.bus ?? null,
          checkpoint: req.checkpoint ?? false,
        },
        trx,
      )
    })
    return { adminPass: this.#d.enableInstancePassword ? adminPass : undefined, imageId: image.id }
  }

  /**
   * Unrescue. With a checkpoint, what the rescue changed on the server's disk is kept, or with
   * `discardChanges` dropped: the server boots its disk as it was when the rescue began. The
   * choice is recorded with the task state, in one transaction (a rescue without a held
   * checkpoint cannot discard: 409, nothing changed).
   */
  async unrescue(ctx: AuthContext, id: string, requestId: string, opts: { discardChanges?: boolean } = {}): Promise<void> {
    const s = await this.#d.actions.check(ctx, id, RULES.unrescue)
    const discardChanges = opts.discardChanges ?? false
    await this.#d.actions.begin(ctx, s, RULES.unrescue, { discardChanges }, requestId, {}, async (trx) => {
      const set = await this.#d.rescues.setCheckpoint(s.id, ['held'], discardChanges ? 'discarding' : 'keeping', trx)
      if (discardChanges && !set) {
        throw new Conflict(`The rescue of server ${s.id} holds no checkpoint of its disk: its changes cannot be discarded.`)
      }
    })
  }

  /** Change when a rescue ends by itself: `seconds` from now, or never (null). */
  async setRescueExpiry(ctx: AuthContext, id: string, seconds: number | null): Promise<void> {
    const s = await this.#d.actions.get(ctx, id)
    authorize(ctx, RULES.rescue.policy, 'member')
    if (s.locked && !ctx.isAdmin) throw new InstanceIsLocked(s.id)
    if (s.vm_state !== 'rescued' && s.task_state !== 'rescuing') throw new InstanceInvalidState(s.id, 'rescue', 'vm_state', s.vm_state)
    if (!(await this.#d.rescues.setExpiry(s.id, seconds))) throw new InstanceInvalidState(s.id, 'rescue', 'vm_state', s.vm_state)
  }

  /** The rescue of a server the caller was given (the extension resource's GET); 404 when it is not in rescue. */
  async current(s: Server): Promise<RescueState> {
    const rescue = await this.#d.rescues.open(s.id)
    if (!rescue || (s.vm_state !== 'rescued' && s.task_state !== 'rescuing')) throw new NotFound(`Server ${s.id} is not in rescue mode.`)
    const [image, access, volumes] = await Promise.all([
      this.#d.images.get(rescue.image_id),
      this.#d.repo.access(s.id),
      this.#d.attachedVolumes?.(s.id) ?? [],
    ])
    const stable =
      rescue.rescue_device !== null || rescue.rescue_bus !== null
        ? stableRescueOf({ hw_rescue_device: rescue.rescue_device ?? undefined, hw_rescue_bus: rescue.rescue_bus ?? undefined })
        : null
    return { rescue, imageName: image?.name ?? null, access, stable, disks: rescueDisks(stable, volumes) }
  }

  /**
   * Keys for the rescue system: the server's own key pair (as Nova's rescue config drive carries
   * the instance's key), and a keypair of the caller by name, and/or a public key.
   */
  async #rescueKeys(ctx: AuthContext, serverId: string, req: RescueRequest): Promise<string[]> {
    const own = await this.#d.repo.bootData(serverId)
    const keys: string[] = own?.key_data ? [own.key_data.trim()] : []
    if (req.keyName !== undefined) {
      const kp = await this.#d.keypairs.find(ctx.userId, req.keyName)
      if (!kp) throw new BadRequest('Invalid key_name provided.')
      keys.push(kp.public_key)
    }
    if (req.publicKey !== undefined) {
      parsePublicKey(req.publicKey)
      keys.push(req.publicKey.trim())
    }
    return [...new Set(keys)]
  }

  /** `rescue_image_ref`, else the image the server was built from, else the configured default. */
  async #rescueImage(ctx: AuthContext, s: Server, ref: string | undefined): Promise<ImageRow> {
    if (ref !== undefined) {
      const image = await this.#d.images.usableImage(ref, s.project_id, ctx.isAdmin)
      if (!image) throw new UnsupportedRescueImage(ref)
      return image
    }
    const own = s.image_id ? await this.#d.images.usableImage(s.image_id, s.project_id, true) : undefined
    if (own) return own
    const fallback = await this.#d.images.findByName(this.#d.defaultRescueImageName)
    if (!fallback || fallback.status !== 'active') throw new UnsupportedRescueImage(s.image_id ?? '')
    return fallback
  }
}

/** An image's properties (a JSON object in the row); none when unreadable. */
function parseProperties(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text)
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}
