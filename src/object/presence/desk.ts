import { DurableWebSocketError } from '../../core/errors.js'
import type { ConnectionPresence, PresenceMeta, RoomPresence } from '../../core/types.js'
import type { ResolvedPresence } from '../../options.js'
import { exceedsBytes } from '../../shared/byteSize.js'
import { describe } from '../../shared/describe.js'
import { validateKey } from '../admission.js'
import { Announcer, type Listener } from './announcer.js'
import { Roster, type StillThere } from './roster.js'

/** The member an upgrade belongs to, as the options named it, before the socket is accepted. */
export interface Arrival {
  readonly key: string
  /** Its metadata as JSON, checked against `maxMetaBytes`. */
  readonly metaText: string
}

/** What the presence desk needs from the rest of the object. */
export interface PresenceParts {
  readonly sql: SqlStorage
  readonly room: string | undefined
  /** Whether a connection the tables name still exists (after a restart). */
  readonly stillThere: StillThere
  /** The live session sockets, which hear about presence. */
  listeners(): Iterable<Listener>
}

/**
 * Presence keyed by member: who is in the room, from the app's `key` and
 * `meta` options. A connection joins its member when it is accepted and
 * leaves it when it ends for good (when its `close` handler is queued), so a
 * session's drop and resume change nothing: the session window is the
 * grace period. The roster (SQLite) holds the members, the announcer tells
 * session clients.
 */
export class PresenceDesk<L> {
  readonly #options: ResolvedPresence<L>
  readonly #roster: Roster
  readonly #announcer: Announcer
  /** What `manager.presence` is. */
  readonly view: RoomPresence

  constructor(options: ResolvedPresence<L>, parts: PresenceParts) {
    this.#options = options
    const roster = new Roster(parts.sql, parts.stillThere)
    this.#roster = roster
    this.#announcer = new Announcer(
      { get: (key) => roster.get(key), list: () => roster.list(), listeners: () => parts.listeners() },
      parts.room,
    )
    this.view = {
      list: () => roster.list(),
      get: (key) => roster.get(key),
      count: () => roster.count(),
    }
  }

  /** The member an upgrade belongs to; throws what the app's options did wrong. */
  arrival(request: Request, locals: L): Arrival {
    const { key: keyOf, meta } = this.#options
    const key = validateKey(keyOf(request, locals), 'presence.key')
    // Asked even when the member is there: a resume can end its session, and the member with it, first.
    return { key, metaText: this.#metaText(meta === undefined ? {} : meta(request, locals), 'presence.meta') }
  }

  /** Whether the room takes this member: one already there always, a new one below `maxMembers`. */
  admits(arrival: Arrival): boolean {
    return this.#roster.has(arrival.key) || this.#roster.count() < this.#options.maxMembers
  }

  /** A connection was accepted (or a session resumed); a session's socket gets the list at the turn's end. */
  arrived(id: number, arrival: Arrival, session: boolean): void {
    const roster = this.#roster
    if (roster.keyOf(id) === undefined) {
      this.#announcer.touch(arrival.key)
      roster.connect(id, arrival.key, arrival.metaText, session)
    }
    if (session) this.#announcer.welcome(id)
  }

  /** A connection ended for good: its member leaves with its last one. */
  left(id: number): void {
    const key = this.#roster.keyOf(id)
    if (key === undefined) return
    this.#announcer.touch(key)
    this.#roster.disconnect(id)
  }

  /** `conn.presence` for connection `id`. */
  forConnection(id: number): ConnectionPresence {
    const roster = this.#roster
    return {
      ...this.view,
      get key() {
        return roster.keyOf(id)
      },
      update: (meta) => this.#update(id, meta),
    }
  }

  /** Forgets what was read: `deleteAll` dropped the tables. */
  reset(): void {
    this.#roster.reset()
  }

  #update(id: number, meta: PresenceMeta): boolean {
    const metaText = this.#metaText(meta, 'conn.presence.update()')
    const key = this.#roster.keyOf(id)
    if (key === undefined) return false
    this.#announcer.touch(key)
    return this.#roster.setMeta(key, metaText)
  }

  /** Metadata as stored and sent: a plain object as JSON, within `maxMetaBytes`. */
  #metaText(meta: unknown, where: string): string {
    let text: string | undefined
    if (typeof meta === 'object' && meta !== null && !Array.isArray(meta)) {
      try {
        text = JSON.stringify(meta)
      } catch {
        text = undefined
      }
    }
    if (text === undefined) {
      throw new DurableWebSocketError(
        'ERR_DWS_INVALID_PRESENCE_META',
        `${where}: a member's metadata must be a plain object that JSON can encode, got ${describe(meta)}.`,
      )
    }
    const max = this.#options.maxMetaBytes
    if (exceedsBytes(text, max)) {
      throw new DurableWebSocketError(
        'ERR_DWS_PRESENCE_META_TOO_LARGE',
        `${where}: a member's metadata is over presence.maxMetaBytes (${String(max)} bytes as JSON). Keep it small (a name, an avatar URL) or raise maxMetaBytes.`,
      )
    }
    return text
  }
}
