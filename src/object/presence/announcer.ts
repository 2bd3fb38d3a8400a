import { log } from '../../core/log.js'
import { encodePresenceDiff, encodePresenceList, type PresenceMember } from '../../shared/presenceFrames.js'

/** Where the announcer writes: the live session sockets, by connection id. */
export interface Listener {
  readonly id: number
  readonly socket: WebSocket
}

/** What the announcer reads: the roster as it is now, and who listens. */
export interface AnnouncerParts {
  get(key: string): PresenceMember | undefined
  list(): PresenceMember[]
  listeners(): Iterable<Listener>
}

/**
 * Tells session clients who is in the room. Changes within one turn are
 * collected and go out as one frame at its end (a microtask): what a member
 * was when the turn first touched it is compared with what it is then, so a
 * join and a leave in the same turn cancel out, and three changes to one
 * member are one update. A socket accepted (or resumed) in the turn gets the
 * whole list instead. Presence frames are control frames: never numbered,
 * never logged, so a resume gets a fresh list rather than a replay.
 */
export class Announcer {
  readonly #parts: AnnouncerParts
  readonly #room: string | undefined
  /** Each key touched this turn, with the member it was before (undefined: not a member). */
  readonly #before = new Map<string, PresenceMember | undefined>()
  /** Sockets that get the whole list at the end of this turn. */
  readonly #fresh = new Set<number>()
  #scheduled = false

  constructor(parts: AnnouncerParts, room: string | undefined) {
    this.#parts = parts
    this.#room = room
  }

  /** Call before `key` changes. */
  touch(key: string): void {
    if (!this.#before.has(key)) this.#before.set(key, this.#parts.get(key))
    this.#schedule()
  }

  /** Connection `id` gets the whole list at the end of this turn, and diffs after it. */
  welcome(id: number): void {
    this.#fresh.add(id)
    this.#schedule()
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    queueMicrotask(() => {
      this.#scheduled = false
      this.#flush()
    })
  }

  #flush(): void {
    const diff = this.#diff()
    const fresh = new Set(this.#fresh)
    this.#fresh.clear()
    if (diff === undefined && fresh.size === 0) return
    let list: string | undefined
    for (const listener of this.#parts.listeners()) {
      if (fresh.has(listener.id)) {
        list ??= encodePresenceList(this.#parts.list())
        this.#send(listener, list)
      } else if (diff !== undefined) {
        this.#send(listener, diff)
      }
    }
  }

  /** The frame for what changed this turn; undefined when nothing did. */
  #diff(): string | undefined {
    if (this.#before.size === 0) return undefined
    const join: PresenceMember[] = []
    const update: PresenceMember[] = []
    const leave: string[] = []
    for (const [key, before] of this.#before) {
      const now = this.#parts.get(key)
      if (before === undefined && now !== undefined) join.push(now)
      else if (before !== undefined && now === undefined) leave.push(key)
      else if (before !== undefined && now !== undefined && changed(before, now)) update.push(now)
    }
    this.#before.clear()
    if (join.length === 0 && update.length === 0 && leave.length === 0) return undefined
    return encodePresenceDiff(join, update, leave)
  }

  #send(listener: Listener, frame: string): void {
    try {
      listener.socket.send(frame)
    } catch (error) {
      // A socket closing under us: its close event does the rest.
      log.warn(
        `presence for connection ${String(listener.id)}${this.#room === undefined ? '' : ` in room ${this.#room}`} not sent:`,
        error,
      )
    }
  }
}

function changed(before: PresenceMember, now: PresenceMember): boolean {
  return before.connections !== now.connections || JSON.stringify(before.meta) !== JSON.stringify(now.meta)
}
