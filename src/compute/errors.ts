// Compute's domain errors, with Nova's messages word for word.
import { BadRequest, Conflict, NotFound } from '../errors.ts'

export class InstanceNotFound extends NotFound {
  constructor(id: string) {
    super(`Instance ${id} could not be found.`)
  }
}
export class InstanceInvalidState extends Conflict {
  constructor(id: string, action: string, attr: 'vm_state' | 'task_state' | 'launched_at' | 'power_state', state: string | null) {
    super(`Cannot '${action}' instance ${id} while it is in ${attr} ${state ?? 'None'}`)
  }
}
export class InstanceIsLocked extends Conflict {
  constructor(id: string) {
    super(`Instance ${id} is locked`)
  }
}
export class FlavorNotFound extends NotFound {
  constructor(id: string) {
    super(`Flavor ${id} could not be found.`)
  }
}
export class KeypairNotFound extends NotFound {
  constructor(userId: string, name: string) {
    super(`Keypair ${name} not found for user ${userId}`)
  }
}
export class InvalidImageRef extends BadRequest {
  constructor(ref: string) {
    super(`Image ${ref} could not be found.`)
  }
}
export class InstanceNotReady extends Conflict {
  constructor(id: string) {
    super(`Instance ${id} is not ready`)
  }
}
export class UnsupportedRescueImage extends BadRequest {
  constructor(ref: string) {
    super(`Requested rescue image '${ref}' is not supported`)
  }
}
