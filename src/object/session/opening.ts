import { SessionCloseCode, encodeWelcome, type SessionOffer } from '../../shared/sessionProtocol.js'
import { ConnectionEntry } from '../connection.js'
import type { DeskParts, SessionDesk } from './desk.js'
import { SessionLink, storedCounters, type SessionCounters } from './link.js'
import { SESSION_TAG, type SessionRecord } from './store.js'
import { hashToken, newToken } from './tokens.js'

/** What a session upgrade read before its checks ({@link SessionOpening.keys}). */
export interface SessionKeys {
  /** The token the welcome hands out, and its hash as stored. */
  readonly token: string
  readonly tokenHash: string
  /** The hash of the token the resume entry presented; empty without one. */
  readonly usedHash: string
  /** The stored session that token names, if any. */
  readonly found: SessionRecord | undefined
}

/**
 * How a session socket begins: the tokens read before the upgrade's checks
 * ({@link keys}), then, in the same synchronous call as the checks, a
 * resume of the session the token names or a new session, its welcome, and
 * a resume's replay. What happens to a session after that is the desk's
 * (desk.ts) and its link's (link.ts).
 */
export class SessionOpening<Env, Data extends object, In, Out> {
  readonly #desk: SessionDesk<Env, Data, In, Out>
  readonly #parts: DeskParts<Env, Data, In, Out>

  constructor(desk: SessionDesk<Env, Data, In, Out>, parts: DeskParts<Env, Data, In, Out>) {
    this.#desk = desk
    this.#parts = parts
  }

  /**
   * A session upgrade's new token, both hashes, and the stored session its
   * resume entry names: hashing is the only await a session upgrade needs,
   * and it comes before the limits are checked.
   */
  async keys(offer: SessionOffer): Promise<SessionKeys> {
    const store = this.#desk.store
    const resume = offer.resume
    const token = (this.#parts.tokenPrefix ?? '') + newToken()
    if (store === undefined) return { token, tokenHash: '', usedHash: '', found: undefined }
    const [tokenHash, usedHash] = await Promise.all([
      hashToken(token),
      resume === undefined ? '' : hashToken(resume.token),
    ])
    const found = resume !== undefined && store.exists() ? store.find(usedHash) : undefined
    return { token, tokenHash, usedHash, found }
  }

  /**
   * A session socket: a resume when the offer names a session that is still
   * in its window and whose missed messages are all still logged, else a new
   * session. Either way the welcome is the first frame, and a resume's missed
   * messages follow it, a window at a time, before anything newer.
   */
  accept(
    server: WebSocket,
    offer: SessionOffer,
    keys: SessionKeys,
    tags: string[],
    protocol: string | undefined,
    owner: string | undefined,
  ): ConnectionEntry<Env, Data, In, Out> {
    const desk = this.#desk
    const { store, log: sessionLog } = desk
    const { ctx, table, host } = this.#parts
    const resume = offer.resume
    // Read before this call, and nothing awaited since: no message of the old socket can have been
    // handled in between.
    let found = keys.found
    // A session never goes back before its own start, whatever position the client offers.
    const from = resume === undefined ? 0 : Math.max(resume.last, found?.floor ?? 0)
    if (found !== undefined && store !== undefined && sessionLog !== undefined) {
      const now = Date.now()
      const expired = found.suspendedAt !== null && found.suspendedAt + store.window <= now
      if (found.createdAt + store.maxAge <= now) {
        desk.end(found, SessionCloseCode.TOO_OLD, 'Session too old')
        found = undefined
      } else if (expired || from < sessionLog.trimmedThrough()) {
        desk.end(found)
        found = undefined
      }
    }
    if (found !== undefined && store !== undefined) {
      const previous = desk.earlierEntry(found.id)
      store.rotate(found.id, keys.tokenHash, keys.usedHash)
      ctx.acceptWebSocket(server, [...(JSON.parse(found.tags) as string[]), SESSION_TAG])
      const earlier = previous?.transport
      const counters =
        earlier instanceof SessionLink ? takeOver(earlier.counters) : storedCounters(found.handled)
      // The replay is a catch-up like any other: live sends wait behind it from `from` on.
      const link = new SessionLink(desk, { resumed: true, batches: offer.batches }, counters, from)
      // A handler still running on the earlier socket keeps working on the same data.
      const data = previous?.data ?? (JSON.parse(found.data) as Data)
      const entry = new ConnectionEntry(
        server,
        found.id,
        data,
        Date.now(),
        'opening',
        host,
        link,
        previous?.queue,
      )
      table.track(entry)
      this.#welcome(entry, link, keys.token, from, protocol)
      link.catchUp(entry)
      return entry
    }
    const id = table.nextId()
    store?.create(id, keys.tokenHash, tags, desk.sends.head(), Date.now(), owner)
    desk.sends.sessionsExist()
    ctx.acceptWebSocket(server, [...tags, SESSION_TAG])
    const link = new SessionLink(desk, { resumed: false, batches: offer.batches }, storedCounters(0))
    const entry = new ConnectionEntry(server, id, {} as Data, Date.now(), 'opening', host, link)
    table.track(entry)
    this.#welcome(entry, link, keys.token, desk.sends.head(), protocol)
    return entry
  }

  /** The session's first frame; `protocol` is what the app's option picked, since the 101 names the session's. */
  #welcome(
    entry: ConnectionEntry<Env, Data, In, Out>,
    link: SessionLink<Env, Data, In, Out>,
    token: string,
    last: number,
    protocol: string | undefined,
  ): void {
    const desk = this.#desk
    const { messages, bytes } = desk.sendWindow
    entry.socket.send(
      encodeWelcome({
        id: entry.id,
        token,
        resumed: link.resumed,
        handled: link.counters.handled,
        last,
        window: desk.store?.window ?? 0,
        // A quarter of the send window: the client's ack arrives long before the window fills.
        ackEvery: Math.max(1, Math.floor(messages / 4)),
        ackBytes: Math.max(1, Math.floor(bytes / 4)),
        ...(protocol === undefined ? {} : { protocol }),
        // So the client refuses a message the server would close the socket for, and keeps its session.
        maxMessageBytes: this.#parts.options.maxMessageBytes,
        maxRequests: desk.maxRequests,
      }),
    )
  }
}

/**
 * A resume while this instance still holds the session: it goes on from the
 * counters in memory. A message whose handler started is not taken again;
 * one still queued behind it never runs on the old socket, so its resend is.
 */
function takeOver(counters: SessionCounters): SessionCounters {
  counters.received = counters.started
  counters.acked = counters.handled
  for (const seq of counters.requests) if (seq > counters.started) counters.requests.delete(seq)
  return counters
}
