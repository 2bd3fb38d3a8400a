import { handlesQueued, isLive } from '../../core/lifecycle.js'
import { log } from '../../core/log.js'
import type { Frame } from '../../core/outgoing.js'
import { encodeFailure, markText, numbered } from '../../shared/dataFrames.js'
import {
  SessionCloseCode,
  encodeServerAck,
  endsSession,
  readClientFrame,
  serverCloseSuspends,
} from '../../shared/sessionProtocol.js'
import { OPEN, type ConnectionEntry, type TransportRecord } from '../connection.js'
import type { Answer } from '../dispatch.js'
import { sizeOf } from '../../shared/byteSize.js'
import type { Outbound, Transport } from '../transport.js'
import type { SessionDesk } from './desk.js'
import type { SessionLog } from './log.js'
import { SESSION_TAG } from './store.js'
import { ReplaySender } from './replaySender.js'
import { SendWindow } from './window.js'

/** Log rows a replay looks at per query; their frames are read only as far as the send window goes. */
const REPLAY_PAGE_ROWS = 64

/** The server acknowledges a session client's messages at least this often. */
const ACK_EVERY = 32

/**
 * How far a session's client messages got, in the client's numbers. Shared
 * by the sockets of one session while this instance holds them: a resume
 * that comes while a handler still runs goes on from here, not from storage.
 */
export interface SessionCounters {
  /** The last message taken into the queue; later copies of it are resends and are dropped. */
  received: number
  /** The last message whose handler started. */
  started: number
  /** The last message whose handler finished, stored with its `data`: what the welcome and acks report. */
  handled: number
  /** The last `handled` acknowledged to the client. */
  acked: number
  /** Requests taken and not yet answered, by their `c`; `maxRequests` bounds them. */
  readonly requests: Set<number>
}

/** Counters for a socket whose session this instance only knows from storage. */
export function storedCounters(handled: number): SessionCounters {
  return { received: handled, started: handled, handled, acked: handled, requests: new Set() }
}

/**
 * The transport of one session socket (docs/protocol.md): numbered frames
 * both ways, dropped resends, acknowledgements, and the send window with its
 * catch-up from the log. A socket's own state lives here; the session's
 * stored state and the log belong to the desk.
 */
export class SessionLink<Env, Data extends object, In, Out> implements Transport<Env, Data, In, Out> {
  readonly resumed: boolean
  /** The client offered BATCHES_OFFER: a catch-up may send its frames in batches. */
  readonly batches: boolean
  readonly counters: SessionCounters
  readonly #desk: SessionDesk<Env, Data, In, Out>
  /** Set once the client used this socket after its welcome: its previous token then retires. */
  #confirmed: boolean
  /** Set while live sends are held back: the last `g` sent. Stored, so a woken object goes on from there. */
  #heldAfter: number | undefined
  #window: SendWindow | undefined

  constructor(
    desk: SessionDesk<Env, Data, In, Out>,
    { resumed, batches }: { resumed: boolean; batches: boolean },
    counters: SessionCounters,
    heldAfter?: number,
  ) {
    this.#desk = desk
    this.resumed = resumed
    this.batches = batches
    this.counters = counters
    this.#confirmed = !resumed
    this.#heldAfter = heldAfter
  }

  /**
   * A frame from the client: an acknowledgement, or a numbered message. A
   * number already taken is a resend after a resume and is dropped, so each
   * message reaches `message` once per session. It counts as handled once
   * its handler is done, in the same turn as its `data` is stored
   * (docs/guarantees.md).
   */
  receive(entry: ConnectionEntry<Env, Data, In, Out>, raw: string | ArrayBuffer): Promise<void> | undefined {
    const desk = this.#desk
    if (!this.#confirmed) {
      this.#confirmed = true
      desk.store?.confirm(entry.id)
    }
    const frame = readClientFrame(raw)
    const counters = this.counters
    if (frame.kind === 'invalid') {
      this.#protocolError(entry, frame.problem)
      return undefined
    }
    if (frame.kind === 'ack') {
      if (counters.handled > counters.acked) this.#ack(entry)
      if (frame.last !== undefined) this.#acked(entry, frame.last)
      return undefined
    }
    const { seq, payload } = frame
    if (seq <= counters.received) {
      if (counters.handled > counters.acked) this.#ack(entry)
      return undefined
    }
    // Without a log nothing is ever resent, and a woken object does not know the count: take it as it comes.
    if (desk.store !== undefined && seq !== counters.received + 1) {
      this.#protocolError(entry, `message ${String(seq)} where ${String(counters.received + 1)} was due`)
      return undefined
    }
    counters.received = seq
    const request = frame.mark !== undefined
    if (request && !this.#tookRequest(entry, seq)) return undefined
    if (!desk.limits.admit(entry, payload)) return undefined
    return entry.queue.run(() => {
      if (!handlesQueued(entry.state)) return undefined
      counters.started = seq
      const after = (): void => {
        this.#handled(entry, seq)
      }
      if (!request)
        return desk.handling(entry.id, seq, 'message', () => desk.handle(entry, payload, seq, after))
      return desk.handling(entry.id, seq, 'request', () =>
        desk.request(entry, payload, seq, (answer) => this.#answer(entry, seq, answer), after),
      )
    }, sizeOf(payload))
  }

  /** Counts a request in flight; past `maxRequests` the session ends with 3906. */
  #tookRequest(entry: ConnectionEntry<Env, Data, In, Out>, seq: number): boolean {
    const requests = this.counters.requests
    if (requests.size < this.#desk.maxRequests) {
      requests.add(seq)
      return true
    }
    log.warn(
      `${this.#desk.label(entry)} had more than ${String(this.#desk.maxRequests)} requests waiting for replies, closing it with 3906`,
    )
    this.#desk.close(entry, SessionCloseCode.TOO_MANY_REQUESTS, 'Too many requests')
    return false
  }

  /** A request's reply or failure: numbered and logged like a send, so a resume brings it if the drop took it. */
  #answer(entry: ConnectionEntry<Env, Data, In, Out>, to: number, answer: Answer): void {
    this.counters.requests.delete(to)
    if (answer.ok) this.send(entry, answer.frame, markText({ type: 'reply', to }))
    else this.send(entry, encodeFailure(answer.failure), markText({ type: 'failure', to }))
  }

  /** A handler is done with message `seq`: marked handled, acknowledged now and then. */
  #handled(entry: ConnectionEntry<Env, Data, In, Out>, seq: number): void {
    const counters = this.counters
    counters.handled = seq
    this.#desk.store?.saveHandled(entry.id, seq)
    // After a resume the session's current socket is another one, which shares these counters.
    const current = this.#desk.current(entry.id) ?? entry
    if (seq - counters.acked >= ACK_EVERY && current.transport instanceof SessionLink)
      current.transport.#ack(current)
  }

  canSend(entry: ConnectionEntry<Env, Data, In, Out>): boolean {
    const state = entry.state
    return state !== 'closedByServer' && state !== 'draining' && state !== 'closedByPeer'
  }

  /**
   * A send to this session: numbered, and logged so a resume replays it. It
   * goes to the session's current socket, which after a resume may be newer
   * than the one the sender's `conn` came from; while the session is
   * suspended it waits in the log.
   */
  send(entry: ConnectionEntry<Env, Data, In, Out>, frame: Frame, mark = ''): boolean {
    const desk = this.#desk
    if (desk.relay !== undefined) {
      // Numbered by the root, so the session's `g` is the room's on every leaf; it comes back in a batch.
      desk.relay.publish({ target: entry.id, tag: null, except: null, frame, mark })
      return true
    }
    const seq = desk.sends.append(entry.id, null, null, frame, mark)
    const current = desk.current(entry.id)
    if (current === undefined) return desk.store !== undefined
    const outbound = { frame, numbered: () => ({ seq, frame: numbered(seq, frame, mark) }) }
    return desk.sends.deliverSafely(current, outbound)
  }

  /**
   * Sends a numbered frame unless the client is too far behind: past
   * `sendWindow` unacknowledged frames or bytes, live sends stop (the frame
   * is logged anyway) until its acknowledgements let it catch up from the
   * log. Without a log there is nothing to catch up from, and it is closed
   * at once. Returns whether the frame was sent or will be replayed.
   */
  deliver(entry: ConnectionEntry<Env, Data, In, Out>, outbound: Outbound): boolean {
    const { seq, frame } = outbound.numbered()
    const window = this.#windowOf()
    const sessionLog = this.#desk.log
    if (window.held) {
      if (sessionLog !== undefined && sessionLog.trimmedThrough() > window.sent) this.#tooSlow(entry)
      return isLive(entry.state)
    }
    if (!window.fits(sizeOf(frame))) {
      if (sessionLog === undefined) {
        this.#tooSlow(entry)
        return false
      }
      window.held = true
      this.#hold(entry, window.sent)
      log.warn(
        `${this.#desk.label(entry)} is behind by ${String(window.inFlight)} frames; holding its live sends`,
      )
      return true
    }
    if (!entry.sendFrame(frame)) return false
    window.sentFrame(seq, sizeOf(frame))
    return true
  }

  /** The client's ack: what it received leaves the window, and a held one catches up. */
  #acked(entry: ConnectionEntry<Env, Data, In, Out>, last: number): void {
    const window = this.#windowOf()
    window.acked(last)
    if (window.held) this.catchUp(entry)
  }

  /**
   * Replays from the log what a held client has not been sent, as far as
   * the window allows; once it reaches the head of the log, live sends
   * resume. All of it runs in one turn, so no send can slip in between.
   */
  catchUp(entry: ConnectionEntry<Env, Data, In, Out>): void {
    const sessionLog = this.#desk.log
    if (sessionLog === undefined || !isLive(entry.state)) return
    const window = this.#windowOf()
    if (sessionLog.trimmedThrough() > window.sent) {
      this.#tooSlow(entry)
      return
    }
    // A client that missed nothing (the common resume) costs no query.
    if (window.sent >= sessionLog.head()) {
      window.held = false
      this.#hold(entry, undefined)
      return
    }
    const sender = new ReplaySender((frame) => entry.sendFrame(frame), this.batches)
    try {
      this.#replay(entry, sessionLog, window, sender)
    } finally {
      // Every frame the window counts as sent goes out in this turn, batched or not.
      sender.flush()
    }
  }

  /** {@link catchUp}'s pages: each read from the log as far as the window goes, and handed to `sender`. */
  #replay(
    entry: ConnectionEntry<Env, Data, In, Out>,
    sessionLog: SessionLog,
    window: SendWindow,
    sender: ReplaySender,
  ): void {
    const tags = this.#desk.tagsOf(entry)
    for (let after = window.sent; ;) {
      const page = sessionLog.pending(entry.id, tags, after, REPLAY_PAGE_ROWS)
      const fitting: number[] = []
      let bytes = 0
      for (const { seq, size } of page.pending) {
        if (!window.fitsBeside(fitting.length, bytes, size)) break
        fitting.push(seq)
        bytes += size
      }
      for (const logged of sessionLog.replayFrames(fitting)) {
        const { frame } = logged
        const size = sizeOf(frame)
        if (!window.fits(size)) {
          this.#hold(entry, window.sent)
          return
        }
        if (!sender.add(frame, size)) return
        window.sentFrame(logged.seq, size)
      }
      if (fitting.length < page.pending.length) {
        this.#hold(entry, window.sent)
        return
      }
      if (!page.full || page.through === undefined) break
      after = page.through
    }
    window.held = false
    this.#hold(entry, undefined)
  }

  /** Live sends wait after `g` = `after` (or go again: undefined); stored, so a woken object goes on from there. */
  #hold(entry: ConnectionEntry<Env, Data, In, Out>, after: number | undefined): void {
    if (this.#heldAfter === after) return
    this.#heldAfter = after
    if (entry.state !== 'opening') entry.writeQuietly()
  }

  #windowOf(): SendWindow {
    this.#window ??= new SendWindow(
      this.#heldAfter ?? this.#desk.sends.head(),
      this.#heldAfter !== undefined,
      this.#desk.sendWindow,
    )
    return this.#window
  }

  /**
   * The server's ack, with a position advance when the socket is not held
   * back: then every frame for it up to the log's head has been sent, and the
   * client may take the head as its position.
   */
  #ack(entry: ConnectionEntry<Env, Data, In, Out>, head = this.#desk.log?.head()): void {
    const counters = this.counters
    counters.acked = counters.handled
    const window = head === undefined ? undefined : this.#windowOf()
    const last = window === undefined || window.held ? undefined : head
    try {
      entry.socket.send(encodeServerAck(counters.handled, last))
      if (window !== undefined && last !== undefined) window.told = last
    } catch {
      // The socket is gone; the next welcome carries the count instead.
    }
  }

  /**
   * The log dropped everything through `trimmed`: a client that was sent
   * nothing past it (nothing was for it) would be reset on its next resume,
   * though it missed nothing. It gets `head` as its position first, in the
   * same turn as the trim.
   */
  logTrimmed(entry: ConnectionEntry<Env, Data, In, Out>, trimmed: number, head: number): void {
    const window = this.#windowOf()
    if (!window.held && window.told < trimmed) this.#ack(entry, head)
  }

  #tooSlow(entry: ConnectionEntry<Env, Data, In, Out>): void {
    log.warn(`${this.#desk.label(entry)} fell behind what the session log holds, closing it with 3903`)
    this.#desk.close(entry, SessionCloseCode.SLOW_CONSUMER, 'Slow consumer')
  }

  #protocolError(entry: ConnectionEntry<Env, Data, In, Out>, what: string): void {
    log.warn(`${this.#desk.label(entry)} broke the session protocol (${what}), closing it with 1002`)
    this.#desk.close(entry, SessionCloseCode.PROTOCOL_ERROR, 'Protocol error')
  }

  survives(code: number, by: 'server' | 'peer'): boolean {
    if (this.#desk.store === undefined) return false
    return by === 'server' ? serverCloseSuspends(code) : !endsSession(code)
  }

  ended(entry: ConnectionEntry<Env, Data, In, Out>): void {
    this.#desk.remove(entry.id)
  }

  suspend(entry: ConnectionEntry<Env, Data, In, Out>, code: number, reason: string): Promise<void> {
    return this.#desk.suspend(entry, code, reason)
  }

  /**
   * The socket is gone or closing (a message handled just before the
   * client's close, or a resume took over while the handler ran), but the
   * session lives on: its data goes where a resume reads it, and to the
   * socket that carries the session now.
   */
  keepsData(entry: ConnectionEntry<Env, Data, In, Out>): boolean {
    const state = entry.state
    const store = this.#desk.store
    if (store === undefined) return false
    if (isLive(state) ? entry.socket.readyState === OPEN : state !== 'suspended' && state !== 'replaced')
      return false
    entry.dataRead = false
    store.saveData(entry.id, entry.data)
    const current = this.#desk.current(entry.id)
    if (current !== undefined && current !== entry) current.data = entry.data
    return true
  }

  describe(record: TransportRecord): void {
    record.session = this.batches ? { resumed: this.resumed, batches: true } : { resumed: this.resumed }
    if (this.#heldAfter !== undefined) record.held = this.#heldAfter
  }

  stored(entry: ConnectionEntry<Env, Data, In, Out>): void {
    this.#desk.store?.saveData(entry.id, entry.data)
  }

  visibleTags(tags: string[]): string[] {
    return tags.filter((tag) => tag !== SESSION_TAG)
  }
}
