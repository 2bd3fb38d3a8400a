/**
 * The presence frames of the session protocol (docs/protocol.md §9): what a
 * session socket hears about who is in its room. Encoded by the object
 * (presence/announcer.ts), read by the client (client/Presence.ts) through
 * {@link readServerFrame} in sessionProtocol.ts.
 */

/**
 * A value in a member's metadata, as JSON gives it back; a nested object or
 * list is an `object` to narrow (a recursive JSON type is more than the RPC
 * types can follow, and `members()` is called over RPC).
 */
export type JsonValue = string | number | boolean | null | object

/** One member of a room's presence: its key, its metadata, and how many connections it has. */
export interface PresenceMember {
  readonly key: string
  readonly meta: Record<string, JsonValue>
  readonly connections: number
}

/**
 * What a presence frame says: the whole list (after every welcome), or what
 * changed since the last frame. A join or an update carries the member as it
 * is now, so applying one twice is harmless; a leave names the key.
 */
export type PresenceFrame =
  | { readonly kind: 'list'; readonly members: readonly PresenceMember[] }
  | {
      readonly kind: 'diff'
      readonly join: readonly PresenceMember[]
      readonly update: readonly PresenceMember[]
      readonly leave: readonly string[]
    }

/** `{"t":"presence","members":[…]}`: the room's members, as a session socket gets them after its welcome. */
export function encodePresenceList(members: readonly PresenceMember[]): string {
  return JSON.stringify({ t: 'presence', members: members.map(memberFields) })
}

/** `{"t":"presence","join":[…],"update":[…],"leave":[…]}`, each list only when it is not empty. */
export function encodePresenceDiff(
  join: readonly PresenceMember[],
  update: readonly PresenceMember[],
  leave: readonly string[],
): string {
  return JSON.stringify({
    t: 'presence',
    ...(join.length === 0 ? {} : { join: join.map(memberFields) }),
    ...(update.length === 0 ? {} : { update: update.map(memberFields) }),
    ...(leave.length === 0 ? {} : { leave }),
  })
}

/** The fields in one order, so that the same member always encodes to the same text. */
function memberFields({ key, meta, connections }: PresenceMember): PresenceMember {
  return { key, meta, connections }
}

/**
 * A presence control frame's fields (its `t` already read), strictly: the
 * frame, or what is wrong with it.
 */
export function readPresenceFields(
  fields: Record<string, unknown>,
): { readonly frame: PresenceFrame } | { readonly problem: string } {
  const { members, join, update, leave } = fields
  if (members !== undefined) {
    if (join !== undefined || update !== undefined || leave !== undefined)
      return { problem: 'a presence frame with both members and changes' }
    const list = readMembers(members)
    if (list === undefined)
      return { problem: 'a presence frame whose members are not all { key, meta, connections }' }
    return { frame: { kind: 'list', members: list } }
  }
  const joined = join === undefined ? [] : readMembers(join)
  const updated = update === undefined ? [] : readMembers(update)
  const left = leave === undefined ? [] : readKeys(leave)
  if (joined === undefined || updated === undefined || left === undefined)
    return { problem: 'a presence frame whose join, update or leave is not a list of members or keys' }
  return { frame: { kind: 'diff', join: joined, update: updated, leave: left } }
}

function readMembers(value: unknown): PresenceMember[] | undefined {
  if (!Array.isArray(value)) return undefined
  const members: PresenceMember[] = []
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) return undefined
    const { key, meta, connections } = item as Record<string, unknown>
    if (typeof key !== 'string' || key === '' || !isPositiveCount(connections)) return undefined
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return undefined
    members.push({ key, meta: meta as Record<string, JsonValue>, connections })
  }
  return members
}

function readKeys(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined
  const keys = value as unknown[]
  return keys.every((key) => typeof key === 'string' && key !== '') ? (keys as string[]) : undefined
}

function isPositiveCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0
}
