// Paths that exist only from a microversion on: below it, Nova's answer to a method outside its
// versions (VersionNotFoundForAPIMethod), a plain 404.
import { NotFound } from '../../../errors.ts'
import type { Microversion } from '../../microversion.ts'
import { has, type Change } from '../../microversion-changes.ts'

export function requireVersion(v: Microversion, change: Change): void {
  if (!has(v, change)) throw new NotFound('The resource could not be found.')
}
