// Glance's default policy: the "secure RBAC" defaults of glance/policies/image.py and base.py,
// enforced by default since Glance 2023.x. A reader of the project may look, a member may add
// and change the project's images and read their data, an admin may do everything; making an
// image public is an admin's. The image service asks here before every read and change.
import { Forbidden, NotFound } from '../errors.ts'
import { holdsRole } from '../identity/roles.ts'

/** Who is asking: the parts of the token that Glance's policies look at. */
export interface Caller {
  projectId: string | null
  isAdmin: boolean
  /** Names of the token's roles on its project. */
  roles: readonly string[]
}

/**
 * What the rules read of an image (Glance's ImageTarget, whose project_id is the image's owner and
 * member_id the caller's project when the image is shared with it: glance/db ImageRepo's `member`).
 */
export interface ImageTarget {
  owner: string | null
  visibility: string
  member?: string | null
}

export type ImageRule =
  | 'get_images'
  | 'get_image'
  | 'download_image'
  | 'add_image'
  | 'modify_image'
  | 'upload_image'
  | 'delete_image'
  | 'publicize_image'
  | 'communitize_image'
  | 'get_members'
  | 'get_member'
  | 'add_member'
  | 'modify_member'
  | 'delete_member'

/**
 * Public and community images are everyone's to see; a shared one its owner's and its members'
 * (whatever their status: glance/db/utils.py is_image_visible); the others only their owner's.
 */
export function visibleTo(image: ImageTarget, viewer: Pick<Caller, 'projectId' | 'isAdmin'>): boolean {
  return (
    image.visibility === 'public' ||
    image.visibility === 'community' ||
    viewer.isAdmin ||
    (image.owner !== null && image.owner === viewer.projectId) ||
    (image.visibility === 'shared' && image.member != null && image.member === viewer.projectId)
  )
}

const reader = (c: Caller) => holdsRole(c.roles, 'reader')
const member = (c: Caller) => holdsRole(c.roles, 'member')
const owns = (c: Caller, t: ImageTarget) => t.owner !== null && t.owner === c.projectId
/** IMAGE_MEMBER_CHECK: project_id:%(member_id)s. */
const sharedWith = (c: Caller, t: ImageTarget) => t.member != null && t.member === c.projectId

// Each rule's check string without its leading "role:admin or": an admin passes them all.
const RULES: Record<ImageRule, (c: Caller, t: ImageTarget) => boolean> = {
  get_images: reader, // ADMIN_OR_PROJECT_READER, on the caller's own project
  get_image: (c, t) => reader(c) && visibleTo(t, c), // ADMIN_OR_PROJECT_READER_GET_IMAGE
  download_image: (c, t) => member(c) && visibleTo(t, c), // ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE
  add_image: (c, t) => member(c) && owns(c, t), // ADMIN_OR_PROJECT_MEMBER, project_id being the new image's owner
  modify_image: (c, t) => member(c) && owns(c, t), // ADMIN_OR_PROJECT_MEMBER
  upload_image: (c, t) => member(c) && owns(c, t),
  delete_image: (c, t) => member(c) && owns(c, t),
  communitize_image: (c, t) => member(c) && owns(c, t),
  publicize_image: () => false, // role:admin
  get_members: (c, t) => reader(c) && (owns(c, t) || sharedWith(c, t)), // ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER
  get_member: (c, t) => reader(c) && (owns(c, t) || sharedWith(c, t)),
  add_member: (c, t) => member(c) && owns(c, t), // ADMIN_OR_PROJECT_MEMBER
  delete_member: (c, t) => member(c) && owns(c, t),
  modify_member: (c, t) => member(c) && sharedWith(c, t), // ADMIN_OR_SHARED_MEMBER: the member, never the owner
}

/**
 * Throws unless `rule` allows `caller` on `image`: Glance's 403, "You are not authorized to
 * complete <rule> action.", or for a stored image (one with an id) the caller may not even see,
 * 404, as Glance's API policy answers so as not to reveal it.
 */
export function enforce(caller: Caller, rule: ImageRule, image: ImageTarget & { id?: string }): void {
  if (caller.isAdmin || RULES[rule](caller, image)) return
  if (image.id !== undefined && (rule === 'get_image' || !RULES.get_image(caller, image)))
    throw new NotFound(`No image found with ID ${image.id}`)
  throw new Forbidden(`You are not authorized to complete ${rule} action.`)
}
