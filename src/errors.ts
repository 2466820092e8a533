// Domain errors: named by condition, carrying the user-facing message (Nova's words) and a
// kind. Only api/errors.ts turns a kind into a status code and a fault body.

export type ErrorKind =
  | 'badRequest'
  | 'unauthorized'
  | 'forbidden'
  | 'notFound'
  | 'badMethod'
  | 'notAcceptable'
  | 'conflict'
  | 'overLimit'
  | 'badMediaType'
  | 'notImplemented'
  | 'unavailable'

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

export class BadRequest extends DomainError {
  constructor(message: string) {
    super('badRequest', message)
  }
}
export class Unauthorized extends DomainError {
  constructor(message = 'The request you have made requires authentication.') {
    super('unauthorized', message)
  }
}
export class Forbidden extends DomainError {
  constructor(message: string) {
    super('forbidden', message)
  }
}
export class NotFound extends DomainError {
  constructor(message: string) {
    super('notFound', message)
  }
}
export class Conflict extends DomainError {
  constructor(message: string) {
    super('conflict', message)
  }
}
export class NotAcceptable extends DomainError {
  constructor(message: string) {
    super('notAcceptable', message)
  }
}
export class OverLimit extends DomainError {
  constructor(
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super('overLimit', message, retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) })
  }
}
export class ServiceUnavailable extends DomainError {
  constructor(message: string) {
    super('unavailable', message)
  }
}

/** Nova's policy refusal, word for word. */
export class PolicyNotAuthorized extends Forbidden {
  constructor(rule: string) {
    super(`Policy doesn't allow ${rule} to be performed.`)
  }
}
