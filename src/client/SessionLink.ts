import { exceedsBytes } from '../shared/byteSize.js'
import type { Frame } from '../shared/serializer.js'
import type { PresenceFrame } from '../shared/presenceFrames.js'
import {
  BATCHES_OFFER,
  SESSION_PROTOCOL,
  SessionCloseCode,
  isBatch,
  readBatch,
  type Welcome,
} from '../shared/sessionProtocol.js'
import { ClientError } from './ClientError.js'
import { ACK_AFTER_MS, ProtocolViolation, Session } from './Session.js'
import { OPEN, type Socket } from './socket.js'
import { StoredSession, type SessionStore } from './StoredSession.js'

/**
 * Whether the current socket speaks the session protocol: not at all, not
 * yet (its welcome has not come), or fully.
 */
export type LinkMode = 'plain' | 'welcome' | 'session'

/** What the link needs from its client: the queue it saves with the session, and the app's error event. */
export interface LinkHost {
  waiting(): readonly Frame[]
  error(error: ClientError): void
}

/** The part of a socket the link writes to. */
type Wire = Pick<Socket, 'readyState' | 'protocol' | 'send'>

/** What a frame from the server asks of the client, once the link has taken its part. */
export type Heard =
  | { kind: 'data'; payload: string | ArrayBuffer }
  | { kind: 'reply'; to: number; ok: boolean; payload: string | ArrayBuffer }
  | Welcomed
  | { kind: 'broken'; why: string }
  | { kind: 'presence'; presence: PresenceFrame }
  /** Several data frames in one message: each goes through `receive` again, in order. */
  | { kind: 'batch'; frames: string[] }
  | { kind: 'none' }

/** A welcome: what to write again before anything new, and what a reset lost. */
export interface Welcomed {
  kind: 'welcome'
  welcome: Welcome
  resend: Frame[]
  lost: Frame[] | undefined
}

/**
 * A client's durable session across its sockets: the welcome, numbered
 * frames and their resends, acknowledgements both ways, and the store that
 * lets a reload resume. The client owns the sockets and the queue; the link
 * only writes to the socket it was attached to.
 */
export class SessionLink {
  readonly #host: LinkHost
  #session = new Session()
  #stored: StoredSession | undefined
  #unsaved: { position: boolean; messages: boolean } | undefined
  #ackTimer: ReturnType<typeof setTimeout> | undefined
  #socket: Wire | undefined
  #mode: LinkMode = 'plain'
  /** A welcome came on some socket of this client: the server speaks sessions. */
  #seen = false

  constructor(host: LinkHost) {
    this.#host = host
  }

  get mode(): LinkMode {
    return this.#mode
  }

  get seen(): boolean {
    return this.#seen
  }

  /** The server's id for the session, from the latest welcome. */
  get id(): number | undefined {
    return this.#session.id
  }

  /** How many requests the server lets wait for replies, from the latest welcome. */
  get maxRequests(): number | undefined {
    return this.#session.maxRequests
  }

  /** Frames sent in the session that the server has not acknowledged yet; they count against `maxQueued`. */
  get held(): number {
    return this.#mode === 'plain' ? 0 : this.#session.unacknowledged.length
  }

  /** Takes the session the store kept, and returns the messages that were waiting for a socket then. */
  load(store: SessionStore | undefined, key: string): Frame[] {
    if (store === undefined) return []
    const stored = new StoredSession(store, key)
    this.#stored = stored
    try {
      const saved = stored.load()
      if (saved === undefined) return []
      this.#session = new Session(saved)
      return saved.waiting
    } catch (cause) {
      // Reported a tick later: the app adds its listeners after connect() returns.
      queueMicrotask(() => this.#storeFailed(cause))
      return []
    }
  }

  /**
   * What an attempt offers: the session protocol, a resume of this session
   * beside it, since the server must know it when it accepts the socket,
   * before any frame, and that this client reads batches.
   */
  offer(protocols: readonly string[]): string[] {
    const resume = this.#session.resumeOffer()
    return [SESSION_PROTOCOL, ...(resume === undefined ? [] : [resume]), BATCHES_OFFER, ...protocols]
  }

  /** A socket that offered the session opened; true when the server took it, so its welcome must come first. */
  opened(socket: Wire): boolean {
    if (socket.protocol !== SESSION_PROTOCOL) return false
    this.#socket = socket
    this.#mode = 'welcome'
    return true
  }

  /** The socket is gone; the session stays, for the next one. */
  detach(): void {
    this.#stopAck()
    this.#socket = undefined
    this.#mode = 'plain'
  }

  /** Throws for a frame over the server's `maxMessageBytes`, from the latest welcome: the server would close for it. */
  checkSize(frame: Frame): void {
    const limit = this.#session.maxMessageBytes
    if (limit !== undefined && exceedsBytes(frame, limit)) {
      throw new ClientError(
        'ERR_DWS_MESSAGE_TOO_BIG',
        `This message is over the server's maxMessageBytes (${String(limit)} bytes), so the server would close the connection for it; nothing was sent. Send it in smaller parts.`,
      )
    }
  }

  /** Writes a frame in the session now; false, writing nothing, while `max` frames wait for the server's ack. */
  send(frame: Frame, max: number): boolean {
    const socket = this.#socket
    if (socket === undefined || this.#session.unacknowledged.length >= max) return false
    socket.send(this.number(frame))
    this.numbered()
    return true
  }

  /**
   * Writes a request now, marked so the server answers it; returns its
   * number, which its reply names. Undefined, writing nothing, as for `send`.
   */
  request(frame: Frame, max: number): number | undefined {
    const socket = this.#socket
    if (socket === undefined || this.#session.unacknowledged.length >= max) return undefined
    const seq = this.#session.next
    socket.send(this.number(frame, '?'))
    this.numbered()
    return seq
  }

  /** The number the next frame gets. */
  get next(): number {
    return this.#session.next
  }

  /** Gives a frame the next number (a request its `?`) and keeps it until it is acknowledged; returns what goes on the wire. */
  number(frame: Frame, mark = ''): Frame {
    return this.#session.number(frame, mark)
  }

  /** Frames went out numbered: the store keeps them, and the server is asked to confirm them if it stays quiet. */
  numbered(): void {
    this.#changed('messages')
    this.#armAck()
  }

  /** The client's queue changed; the store keeps it, so a reload still sends it. */
  queueChanged(): void {
    this.#changed('messages')
  }

  /** A frame that breaks the protocol comes back as `broken`, not thrown: stopping is the client's call. */
  receive(data: string | ArrayBuffer): Heard {
    const session = this.#session
    try {
      if (isBatch(data)) {
        if (this.#mode !== 'session') throw new ProtocolViolation('a batch came before the welcome.')
        const frames = readBatch(data)
        if (!Array.isArray(frames)) throw new ProtocolViolation(`${frames.problem}.`)
        return { kind: 'batch', frames }
      }
      const incoming = session.receive(data)
      if (incoming.kind === 'welcome') {
        if (this.#mode !== 'welcome') throw new ProtocolViolation('a second welcome came on one socket.')
        return this.#welcomed(incoming.welcome)
      }
      if (this.#mode === 'welcome' && incoming.kind !== 'other') {
        throw new ProtocolViolation(`${describeFrame(incoming.kind)} came before the welcome.`)
      }
      if (incoming.kind === 'ack') {
        session.acknowledge(incoming.handled)
        this.#changed('messages')
        if (incoming.last !== undefined && session.advance(incoming.last)) this.#changed('position')
      } else if (incoming.kind === 'data') {
        this.#changed('position')
        if (session.ackDue) this.#socket?.send(session.ack())
        this.#armAck()
        const mark = incoming.mark
        if (mark !== undefined && mark.type !== 'request')
          return { kind: 'reply', to: mark.to, ok: mark.type === 'reply', payload: incoming.payload }
        return { kind: 'data', payload: incoming.payload }
      } else if (incoming.kind === 'presence') {
        return incoming
      }
      return { kind: 'none' }
    } catch (error) {
      if (!(error instanceof ProtocolViolation)) throw error
      return { kind: 'broken', why: error.message }
    }
  }

  /**
   * The server's first frame on a session socket: the session is
   * (re)established, or a new one replaces it and `lost` holds what the old
   * one never confirmed.
   */
  #welcomed(welcome: Welcome): Heard {
    const { resend, reset } = this.#session.welcome(welcome)
    this.#mode = 'session'
    this.#seen = true
    this.#changed('position')
    this.#changed('messages')
    return { kind: 'welcome', welcome, resend, lost: reset }
  }

  /** After the welcome, before anything new: the frames to write again, with their old numbers. */
  resend(frames: readonly Frame[], resumed: boolean): void {
    const socket = this.#socket
    if (socket === undefined) return
    for (const frame of frames) socket.send(frame)
    if (frames.length > 0) this.#armAck()
    // Any frame on the new socket tells the server the new token arrived, so it retires the one this
    // resume used; with nothing to resend, an ack says it at once rather than at the first message.
    else if (resumed) socket.send(this.#session.ack())
  }

  /**
   * What a socket's close says about the session, once a server has spoken
   * it: `broken` when the server saw this client break the protocol, `taken`
   * when another socket holds the session now.
   */
  closed(code: number): 'broken' | 'taken' | undefined {
    if (!this.#seen) return undefined
    if (code === SessionCloseCode.PROTOCOL_ERROR) return 'broken'
    if (code === SessionCloseCode.TAKEN_OVER) return 'taken'
    if (code === SessionCloseCode.NOT_YOURS) {
      // Someone else's session: never offer its token again; the next connection is a new session.
      this.#session.disown()
      this.#changed('position')
    }
    return undefined
  }

  /** The client gave up after a close with this code: the session is forgotten, or kept for a reload. */
  dropped(code: number): void {
    this.forget(endsSession(code))
  }

  /**
   * The client is done with its session. When the session ended (a close
   * frame from either side) it is forgotten; otherwise the store keeps it as
   * it was, so a reload can still resume it within the server's window.
   */
  forget(ended: boolean): void {
    this.#stopAck()
    if (ended) {
      this.#unsaved = undefined
      try {
        this.#stored?.remove()
      } catch {
        // Nothing to keep consistent: the next load finds a token the server refuses, and resets.
      }
    } else {
      this.#save()
    }
    this.#stored = undefined
    this.#session = new Session()
  }

  /** Marks what the store must write; one write per kind at the end of the current task, however many changes. */
  #changed(what: 'position' | 'messages'): void {
    if (this.#stored === undefined) return
    if (this.#unsaved === undefined) {
      this.#unsaved = { position: false, messages: false }
      queueMicrotask(() => this.#save())
    }
    this.#unsaved[what] = true
  }

  #save(): void {
    const unsaved = this.#unsaved
    const stored = this.#stored
    const session = this.#session
    this.#unsaved = undefined
    if (unsaved === undefined || stored === undefined) return
    try {
      if (unsaved.position) stored.savePosition(session.state())
      if (unsaved.messages) stored.saveMessages(session.unacknowledged, this.#host.waiting())
    } catch (cause) {
      this.#storeFailed(cause)
    }
  }

  #storeFailed(cause: unknown): void {
    const why = 'The session store failed (full, or not allowed here); a reload may not resume the session.'
    this.#host.error(new ClientError('ERR_DWS_STORE_FAILED', why, { cause }))
  }

  #armAck(): void {
    this.#stopAck()
    this.#ackTimer = setTimeout(() => this.#ackDue(), ACK_AFTER_MS)
  }

  #stopAck(): void {
    if (this.#ackTimer !== undefined) clearTimeout(this.#ackTimer)
    this.#ackTimer = undefined
  }

  /**
   * A quiet second: acknowledge what arrived, and ask for the server's own
   * ack while anything sent is unconfirmed (the server has no timers and
   * answers a client's ack). Repeats while something stays unconfirmed.
   */
  #ackDue(): void {
    this.#ackTimer = undefined
    const session = this.#session
    const socket = this.#socket
    if (this.#mode !== 'session' || socket?.readyState !== OPEN) return
    if (session.receivedSinceAck === 0 && session.unacknowledged.length === 0) return
    socket.send(session.ack())
    if (session.unacknowledged.length > 0) this.#armAck()
  }
}

/**
 * Whether a close the client will not retry leaves it nothing to resume: 1000, and the
 * application codes a server closes with (but 3901: another socket has the session).
 */
function endsSession(code: number): boolean {
  return (
    code === 1000 ||
    (code >= 3000 &&
      code <= 4999 &&
      code !== SessionCloseCode.TAKEN_OVER &&
      code !== SessionCloseCode.SLOW_CONSUMER &&
      code !== SessionCloseCode.TOO_OLD)
  )
}

function describeFrame(kind: 'data' | 'ack' | 'presence'): string {
  return kind === 'ack' ? 'an ack' : kind === 'presence' ? 'a presence frame' : 'a data frame'
}
