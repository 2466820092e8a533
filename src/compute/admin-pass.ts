// Instance passwords as Nova generates them (nova.utils.generate_password): 12 characters,
// at least one from each group, no look-alikes (0, 1, I, O, l), shuffled; from node:crypto.
import { randomInt } from 'node:crypto'

const GROUPS = ['23456789', 'ABCDEFGHJKLMNPQRSTUVWXYZ', 'abcdefghijkmnopqrstuvwxyz'] as const
const ALL = GROUPS.join('')

export function generateInstancePassword(length = 12): string {
  const chars = GROUPS.map((g) => g[randomInt(g.length)]!)
  while (chars.length < length) chars.push(ALL[randomInt(ALL.length)]!)
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1)
    ;[chars[i], chars[j]] = [chars[j]!, chars[i]!]
  }
  return chars.join('')
}
