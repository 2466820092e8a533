// Block storage's domain errors, with Cinder's messages word for word (cinder/exception.py).
import { BadRequest, DomainError, NotFound, PolicyNotAuthorized } from '../errors.ts'

export class VolumeNotFound extends NotFound {
  constructor(id: string) {
    super(`Volume ${id} could not be found.`)
  }
}
export class VolumeMetadataNotFound extends NotFound {
  constructor(id: string, key: string) {
    super(`Volume ${id} has no metadata with key ${key}.`)
  }
}
export class SnapshotMetadataNotFound extends NotFound {
  constructor(id: string, key: string) {
    super(`Snapshot ${id} has no metadata with key ${key}.`)
  }
}
export class SnapshotNotFound extends NotFound {
  constructor(id: string) {
    super(`Snapshot ${id} could not be found.`)
  }
}
export class VolumeTypeNotFound extends NotFound {
  constructor(id: string) {
    super(`Volume type ${id} could not be found.`)
  }
}
export class VolumeTypeNotFoundByName extends NotFound {
  constructor(name: string) {
    super(`Volume type with name ${name} could not be found.`)
  }
}
/** Cinder's InvalidInput (400). */
export class InvalidInput extends BadRequest {
  constructor(reason: string) {
    super(`Invalid input received: ${reason}`)
  }
}
/** Cinder's InvalidVolume: a 400, not a 409 (Tempest's test_delete_attached_volume expects BadRequest). */
export class InvalidVolume extends BadRequest {
  constructor(reason: string) {
    super(`Invalid volume: ${reason}`)
  }
}
export class InvalidSnapshot extends BadRequest {
  constructor(reason: string) {
    super(`Invalid snapshot: ${reason}`)
  }
}
/** Cinder's QuotaError family: 413 overLimit with Retry-After 0 (and retryAfter in the body). */
export class VolumeQuotaExceeded extends DomainError {
  constructor(message: string) {
    super('overLimit', message, { 'retry-after': '0' })
  }
}
/** Cinder's PolicyNotAuthorized: the same words as Nova's. */
export class VolumePolicyNotAuthorized extends PolicyNotAuthorized {}
