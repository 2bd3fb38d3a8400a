/** Where a mount sends clients that name no room. */
export const DEFAULT_ROOM = 'default'

export const MAX_ROOM_NAME_LENGTH = 64

/**
 * Letters, digits, `_`, `-` and inner dots: safe in a URL path, a log line
 * and a storage key as they are. Anything percent-encoded (`%2F`), `..`,
 * spaces or non-ASCII is refused rather than decoded, so two spellings can
 * never reach one room, and a name cannot smuggle a path.
 */
const ROOM_NAME = /^[A-Za-z0-9_-](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?$/

/** Returns why `name` is not a room name, or undefined when it is one. */
export function roomNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'a room name must be a string'
  if (name.length === 0) return 'the room name is empty'
  if (name.length > MAX_ROOM_NAME_LENGTH) {
    return `a room name may be at most ${String(MAX_ROOM_NAME_LENGTH)} characters`
  }
  if (!ROOM_NAME.test(name) || name.includes('..')) {
    return 'a room name may hold only letters, digits, "_", "-" and single inner dots'
  }
  return undefined
}

/** Whether `name` is a room name, e.g. to answer 400 on your own route before `ws.room(env, name)` throws. */
export function isRoomName(name: unknown): name is string {
  return roomNameProblem(name) === undefined
}
