import { DurableWebSocketError } from '../core/errors.js'
import { log } from '../core/log.js'
import type { ObjectSide } from '../options.js'
import { CloseCode } from '../shared/closeCodes.js'
import { describe } from '../shared/describe.js'
import {
  SESSION_PROTOCOL,
  SessionCloseCode,
  retryReason,
  type SessionOffer,
} from '../shared/sessionProtocol.js'
import type { ConnectionTable } from './connectionTable.js'
import type { Arrival, PresenceDesk } from './presence/desk.js'
import type { SessionKeys } from './session/opening.js'
import { fullLeafAnswer } from './shard/leafFull.js'

/** workerd's limits for hibernation tags: at most 10 per socket, each at most 256 characters. */
export const MAX_TAGS = 10
export const MAX_TAG_LENGTH = 256

/** How long a client refused for `maxConnections` should wait before trying again, in seconds. */
const RETRY_AFTER_SECONDS = 5

/** How long a client refused for `maxConnectionsPerKey` should wait: its own sockets must close first. */
const RETRY_AFTER_KEY_SECONDS = 30

/** How long a new member refused for `presence.maxMembers` should wait: members must leave first. */
const RETRY_AFTER_MEMBERS_SECONDS = 30

/** The longest key `maxConnectionsPerKey` accepts; it is kept in the socket's attachment. */
const MAX_KEY_LENGTH = 256

/** What an upgrade that passed every check is accepted with. */
export interface Admitted {
  readonly tags: string[]
  readonly protocol: string | undefined
  /** What `maxConnectionsPerKey` counts it under. */
  readonly key: string | undefined
  /** Who a session belongs to (`resume.owner`). */
  readonly owner: string | undefined
  /** The member it joins, with the `presence` option. */
  readonly arrival: Arrival | undefined
}

/**
 * Whether an upgrade may come in: the session's owner, `maxConnections`,
 * `maxConnectionsPerKey`, the tags and the subprotocol, all decided before an
 * id is spent. Synchronous on purpose: the caller accepts the socket in the
 * same turn, so two upgrades cannot both take a last place.
 */
export class Admission<Env, Data extends object, In, Out, L extends object> {
  readonly #options: ObjectSide<Env, Data, In, Out, L>
  readonly #table: ConnectionTable<Env, Data, In, Out>
  readonly #room: string | undefined
  readonly #presence: PresenceDesk<L> | undefined

  constructor(
    options: ObjectSide<Env, Data, In, Out, L>,
    table: ConnectionTable<Env, Data, In, Out>,
    room: string | undefined,
    presence: PresenceDesk<L> | undefined,
  ) {
    this.#options = options
    this.#table = table
    this.#room = room
    this.#presence = presence
  }

  /** The refusal to answer with, or what to accept the socket with. */
  check(
    request: Request,
    locals: L,
    offer: SessionOffer,
    keys: SessionKeys | undefined,
  ): Admitted | Response {
    const options = this.#options
    const found = keys?.found
    let owner: string | undefined
    let key: string | undefined
    let tags: string[] = []
    let protocol: string | undefined
    let arrival: Arrival | undefined
    try {
      if (keys !== undefined) owner = this.owner(request, locals)
      if (found !== undefined && found.owner !== null && found.owner !== owner) return this.notYours(found.id)
      // A resume closes its session's socket that still looks open as it takes over: that one does not count.
      const replaced = found === undefined ? undefined : this.#table.get(found.id)
      const { maxConnections } = options
      if (
        maxConnections !== undefined &&
        this.#table.count() - (replaced === undefined ? 0 : 1) >= maxConnections
      )
        // A sharded room's leaf tells the Worker to try the next leaf, when the Worker may still do so.
        return (
          fullLeafAnswer(request) ??
          refused(
            offer,
            RETRY_AFTER_SECONDS,
            503,
            'Service Unavailable: this room is full, try again shortly.',
          )
        )
      const perKey = options.maxConnectionsPerKey
      if (perKey !== undefined) {
        key = validateKey(perKey.key(request, locals), 'maxConnectionsPerKey.key')
        if (this.#table.countKey(key) - (replaced?.key === key ? 1 : 0) >= perKey.max)
          return refused(
            offer,
            RETRY_AFTER_KEY_SECONDS,
            429,
            'Too Many Requests: too many connections for this client, try again later.',
          )
      }
      const presence = this.#presence
      if (presence !== undefined) {
        arrival = presence.arrival(request, locals)
        if (!presence.admits(arrival))
          return refused(
            offer,
            RETRY_AFTER_MEMBERS_SECONDS,
            503,
            'Service Unavailable: this room has all the members it takes, try again later.',
          )
      }
      // A session socket carries one tag of the package's own.
      const maxTags = offer.wanted ? MAX_TAGS - 1 : MAX_TAGS
      if (options.tags !== undefined)
        tags = validateTags(options.tags(request, locals), this.#table.lastId + 1, maxTags)
      protocol = chooseProtocol(offer.rest, request, locals, options.protocol)
    } catch (error) {
      // An option's function failed: logged with the room, answered 500, nothing accepted.
      log.error(`refusing an upgrade${this.#room === undefined ? '' : ` to room ${this.#room}`}:`, error)
      return new Response('Internal Server Error\n', { status: 500 })
    }
    return { tags, protocol, key, owner, arrival }
  }

  /** Who a session upgrade comes from (`resume.owner`); undefined when the module names no owner. */
  owner(request: Request, locals: L): string | undefined {
    const pickOwner = this.#options.resume?.owner
    return pickOwner === undefined ? undefined : validateKey(pickOwner(request, locals), 'resume.owner')
  }

  /**
   * Refuses a resume by someone other than the session's owner with 3904,
   * after the handshake so that a browser sees the code: the socket is never
   * accepted into the object, no id is spent, and the session stays its owner's.
   */
  notYours(id: number): Response {
    log.warn(
      `refused a resume of session ${String(id)}${this.#room === undefined ? '' : ` in room ${this.#room}`} by another owner, closing it with 3904`,
    )
    return refusedSession(SessionCloseCode.NOT_YOURS, 'Session belongs to another client')
  }
}

/**
 * Load shed: a plain client gets the HTTP status with Retry-After; a session
 * client gets 1013 with when to come back, which a browser can read.
 */
function refused(offer: SessionOffer, seconds: number, status: number, text: string): Response {
  if (offer.wanted) return refusedSession(CloseCode.TRY_AGAIN_LATER, retryReason(seconds * 1000))
  return new Response(`${text}\n`, { status, headers: { 'Retry-After': String(seconds) } })
}

/**
 * A session upgrade turned away after the handshake, with a close code its
 * client can read (a browser's WebSocket shows no HTTP status): the socket is
 * never accepted into the object, and no id is spent.
 */
function refusedSession(code: number, reason: string): Response {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket]
  server.accept()
  server.close(code, reason)
  return new Response(null, {
    status: 101,
    webSocket: client,
    headers: { 'Sec-WebSocket-Protocol': SESSION_PROTOCOL, 'Sec-WebSocket-Extensions': 'no-compression' },
  })
}

/** A key or an owner an option's function derived: kept in storage, so bounded. */
export function validateKey(key: unknown, option: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_OPTIONS',
      `${option} must return a string of 1 to ${String(MAX_KEY_LENGTH)} characters, got ${typeof key === 'string' ? `${String(key.length)} characters` : describe(key)}.`,
    )
  }
  return key
}

/** RFC 7230 §3.2.6 token, which RFC 6455 §4.1 requires of every subprotocol. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** What the client offered, less anything that is not a token: the 101 must never echo one. */
export function offeredProtocols(request: Request): string[] {
  const header = request.headers.get('Sec-WebSocket-Protocol')
  if (header === null) return []
  return header
    .split(',')
    .map((token) => token.trim())
    .filter((token) => TOKEN.test(token))
}

/**
 * The subprotocol the 101 names, if any. A browser that offered some and
 * gets none back fails the handshake, and RFC 6455 §4.2.2 allows only an
 * offered one, so a pick outside the list is a bug in the option.
 */
function chooseProtocol<L>(
  offered: string[],
  request: Request,
  locals: L,
  pick: ((offered: string[], request: Request, locals: L) => string | undefined) | undefined,
): string | undefined {
  if (pick === undefined || offered.length === 0) return undefined
  const chosen = pick(offered, request, locals)
  if (chosen !== undefined && !offered.includes(chosen)) {
    // The offer is left out of the message: a client may carry a token in it, and this gets logged.
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_OPTIONS',
      `the protocol option chose "${chosen}", which is not among the ${String(offered.length)} subprotocols the client offered.`,
    )
  }
  return chosen
}

function validateTags(tags: unknown, connectionId: number, maxTags: number): string[] {
  const label = `the tags of connection ${String(connectionId)}`
  if (!Array.isArray(tags)) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_TAGS',
      `${label} must be an array of strings, got ${describe(tags)}.`,
    )
  }
  if (tags.length > maxTags) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_TAGS',
      `${label}: ${String(tags.length)} tags, but ${maxTags < MAX_TAGS ? 'a session socket' : 'a socket'} may carry at most ${String(maxTags)}.`,
    )
  }
  for (const tag of tags as unknown[]) {
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG_LENGTH) {
      throw new DurableWebSocketError(
        'ERR_DWS_INVALID_TAGS',
        `${label}: each tag must be a string of 1 to ${String(MAX_TAG_LENGTH)} characters, got ${typeof tag === 'string' ? `${String(tag.length)} characters` : describe(tag)}.`,
      )
    }
  }
  return tags as string[]
}
