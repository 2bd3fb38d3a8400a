import { evictDurableObject } from 'cloudflare:test'
import { numbered, type DataMark } from '../../src/shared/dataFrames.js'
import type { PresenceFrame } from '../../src/shared/presenceFrames.js'
import {
  BATCHES_OFFER,
  SESSION_PROTOCOL,
  encodeClientAck,
  isBatch,
  readBatch,
  readServerFrame,
  resumeEntry,
  type Welcome as ProtocolWelcome,
} from '../../src/shared/sessionProtocol.js'
import { Client, upgrade, type Closed } from './client.js'

export { SESSION_PROTOCOL }

/** The welcome as the server sent it, `t` and `v` included (docs/protocol.md, "The welcome"). */
export type Welcome = ProtocolWelcome & { t: 'welcome'; v: 1 }

/** A numbered frame from the server. */
export interface DataFrame {
  seq: number
  payload: string
  /** A reply's `=c` or a failure's `!c`; absent for a message. */
  mark?: DataMark
}

/** What a session client keeps between its sockets. */
export interface Position {
  last: number
  token: string
}

export interface SessionOpenOptions {
  /** Offer `dws.resume.<last>.<token>` after `dws.session.v1`. */
  resume?: Position
  /** Subprotocols of the application, offered after the package's own. */
  protocols?: string[]
  /** Offer `dws.session.batches`: the server may then replay in batches, which this client unpacks. */
  batches?: boolean
  /** Do not answer the server's close frame (a half-dead peer). */
  halfOpen?: boolean
  /** Hand the upgrade to this object itself instead of the fixture worker (a leaf of a sharded room, say). */
  via?: { fetch(request: Request): Promise<Response> }
}

/** A resume that carries the previous socket's unacknowledged messages over. */
interface Carried {
  position: Position
  nextC: number
  unacked: Map<number, { payload: string; mark: string }>
}

/**
 * A minimal session client for tests inside workerd, written from
 * docs/protocol.md: numbers what it sends, checks and remembers what it
 * receives, and keeps its messages until the server acknowledges them. On a
 * resume it resends what the welcome does not cover, with the old numbers;
 * on a reset it hands them back in {@link reset}. It sends no ack on its
 * own: a test calls {@link ack} or {@link sync} where it wants one.
 */
export class SessionClient {
  readonly client: Client
  readonly welcome: Welcome
  /** What the 101 named. */
  readonly protocol: string | null
  /** Unacknowledged messages of the session this resume offer failed to continue. */
  readonly reset: string[] = []
  /** This socket offered batches; a resume offers them again. */
  readonly batches: boolean
  /** How many frames each batch that came on this socket held, in order. */
  readonly batchSizes: number[] = []
  /** The frames of the latest batch not read yet. */
  readonly #batched: string[] = []
  #last: number
  #token: string
  #nextC = 1
  /** Sent and not acknowledged: each payload with its mark (`?` for a request, '' for a message). */
  readonly #unacked = new Map<number, { payload: string; mark: string }>()
  /** Data frames read while waiting for something else. */
  readonly #stash: DataFrame[] = []
  /** Presence frames read and not yet taken by {@link nextPresence}, with their text as it came. */
  readonly #presence: { frame: PresenceFrame; raw: string }[] = []
  /** The highest `handled` any welcome or ack of this socket carried. */
  handledByServer: number

  private constructor(
    client: Client,
    welcome: Welcome,
    protocol: string | null,
    batches: boolean,
    carried?: Carried,
  ) {
    this.client = client
    this.batches = batches
    this.welcome = welcome
    this.protocol = protocol
    this.#last = welcome.last
    this.#token = welcome.token
    this.handledByServer = welcome.handled
    if (carried === undefined) return
    if (!welcome.resumed) {
      this.reset.push(...[...carried.unacked.values()].map(({ payload }) => payload))
      return
    }
    this.#nextC = carried.nextC
    for (const [c, sent] of carried.unacked) {
      if (c > welcome.handled) {
        this.#unacked.set(c, sent)
        client.send(numbered(c, sent.payload, sent.mark))
      }
    }
  }

  /** Opens a new session socket on `path` and reads its welcome. */
  static async open(path: string, options: SessionOpenOptions = {}): Promise<SessionClient> {
    return SessionClient.#connect(path, options)
  }

  /**
   * Comes back to `path` with this client's token and position, as after a
   * drop; resends what the new welcome says the server has not handled.
   */
  resume(path: string, options: Omit<SessionOpenOptions, 'resume'> = {}): Promise<SessionClient> {
    const carried: Carried = {
      position: this.position,
      nextC: this.#nextC,
      unacked: new Map(this.#unacked),
    }
    return SessionClient.#connect(
      path,
      { batches: this.batches, ...options, resume: carried.position },
      carried,
    )
  }

  static async #connect(
    path: string,
    options: SessionOpenOptions,
    carried?: Carried,
  ): Promise<SessionClient> {
    const offer = [SESSION_PROTOCOL]
    if (options.resume !== undefined) offer.push(resumeEntry(options.resume))
    if (options.batches === true) offer.push(BATCHES_OFFER)
    offer.push(...(options.protocols ?? []))
    const headers = { 'Sec-WebSocket-Protocol': offer.join(', ') }
    const response =
      options.via === undefined
        ? await upgrade(path, headers)
        : await options.via.fetch(
            new Request(`http://fixture.test${path}`, { headers: { Upgrade: 'websocket', ...headers } }),
          )
    if (response.status !== 101 || response.webSocket === null) {
      throw new Error(`expected 101 from ${path}, got ${String(response.status)}: ${await response.text()}`)
    }
    const client = new Client(response.webSocket, { allowHalfOpen: options.halfOpen ?? false })
    const first = await client.nextText()
    const frame = readServerFrame(first)
    if (frame.kind !== 'welcome') throw new Error(`expected the welcome first, got ${first}`)
    const welcome: Welcome = { t: 'welcome', v: 1, ...frame.welcome }
    const named = response.headers.get('Sec-WebSocket-Protocol')
    return new SessionClient(client, welcome, named, options.batches === true, carried)
  }

  get id(): number {
    return this.welcome.id
  }

  get resumed(): boolean {
    return this.welcome.resumed
  }

  /** What a resume offers: the highest `g` received and the newest token. */
  get position(): Position {
    return { last: this.#last, token: this.#token }
  }

  /** The numbers of the messages sent and not yet acknowledged. */
  get unacked(): number[] {
    return [...this.#unacked.keys()]
  }

  /** Sends one data frame with the next number; returns that number. */
  send(payload: string): number {
    const c = this.#nextC++
    this.#unacked.set(c, { payload, mark: '' })
    this.client.send(numbered(c, payload))
    return c
  }

  /** Sends one request (a data frame marked `?`) with the next number; returns that number, which its reply names. */
  request(payload: string): number {
    const c = this.#nextC++
    this.#unacked.set(c, { payload, mark: '?' })
    this.client.send(numbered(c, payload, '?'))
    return c
  }

  /** Sends a frame exactly as given, numbered or not. */
  sendRaw(frame: string | ArrayBuffer): void {
    this.client.send(frame)
  }

  /** Tells the server the highest `g` received. */
  ack(): void {
    this.client.send(encodeClientAck(this.#last))
  }

  /**
   * The next data frame. Acks are taken in on the way; a frame whose number
   * is not above `last` (a duplicate), a second welcome, or a control frame
   * that is not JSON fails the test.
   */
  async next(patience?: number): Promise<DataFrame> {
    const stashed = this.#stash.shift()
    if (stashed !== undefined) return stashed
    for (;;) {
      const frame = await this.#read(patience)
      if (frame !== undefined) return frame
    }
  }

  /** The payloads of the next `count` data frames. */
  async payloads(count: number): Promise<string[]> {
    const found: string[] = []
    while (found.length < count) found.push((await this.next()).payload)
    return found
  }

  async nextPayload(): Promise<string> {
    return (await this.next()).payload
  }

  /**
   * Acks until the server has acknowledged every message sent, keeping the
   * data frames that arrive meanwhile for {@link next}. The server answers an
   * ack only once it handled more than it last acknowledged, so this asks
   * again after each quiet spell.
   */
  async sync(): Promise<void> {
    while (this.#unacked.size > 0) {
      this.ack()
      try {
        const frame = await this.#read(200)
        if (frame !== undefined) this.#stash.push(frame)
      } catch (error) {
        if (!this.client.isOpen) throw error
      }
    }
  }

  /** Fails if a data frame arrives within `ms`: nothing more is owed. */
  async expectNothingWithin(ms: number): Promise<void> {
    const early = this.#stash.shift()
    if (early !== undefined) throw new Error(`expected nothing, got ${JSON.stringify(early)}`)
    const deadline = Date.now() + ms
    for (;;) {
      const left = deadline - Date.now()
      if (left <= 0) return
      let frame: DataFrame | undefined
      try {
        frame = await this.#read(left)
      } catch (error) {
        if (String(error).includes('no message within')) return
        throw error
      }
      if (frame !== undefined) throw new Error(`expected nothing, got ${JSON.stringify(frame)}`)
    }
  }

  /** The next presence frame, as read and as it came; data frames that arrive meanwhile wait for {@link next}. */
  async nextPresence(patience?: number): Promise<{ frame: PresenceFrame; raw: string }> {
    for (;;) {
      const found = this.#presence.shift()
      if (found !== undefined) return found
      const frame = await this.#read(patience)
      if (frame !== undefined) this.#stash.push(frame)
    }
  }

  /** Fails if a presence frame arrives within `ms`. */
  async expectNoPresenceWithin(ms: number): Promise<void> {
    const deadline = Date.now() + ms
    for (;;) {
      const early = this.#presence.shift()
      if (early !== undefined) throw new Error(`expected no presence frame, got ${early.raw}`)
      const left = deadline - Date.now()
      if (left <= 0) return
      try {
        const frame = await this.#read(left)
        if (frame !== undefined) this.#stash.push(frame)
      } catch (error) {
        if (String(error).includes('no message within')) return
        throw error
      }
    }
  }

  close(code?: number, reason?: string): void {
    this.client.close(code, reason)
  }

  whenClosed(): Promise<Closed> {
    return this.client.whenClosed()
  }

  /**
   * A drop of this socket alone, as the object sees one (1006, no close
   * frame), while the object stays in memory. The client side then sees its
   * socket end; what the server wrote to it after that is lost, as on a cut.
   */
  async drop(room: { drop(id: number): Promise<boolean> }): Promise<void> {
    if (!(await room.drop(this.id))) throw new Error(`connection ${String(this.id)} was not open to drop`)
    await this.whenClosed()
  }

  /** The frames of one socket until the next data frame; undefined after a control frame. A batch is unpacked. */
  async #read(patience?: number): Promise<DataFrame | undefined> {
    let raw = this.#batched.shift() ?? (await this.client.next(patience))
    if (isBatch(raw)) {
      if (!this.batches) throw new Error(`a batch to a client that did not offer batches: ${raw}`)
      const frames = readBatch(raw)
      if (!Array.isArray(frames)) throw new Error(`${frames.problem}: ${raw}`)
      this.batchSizes.push(frames.length)
      this.#batched.push(...frames)
      raw = this.#batched.shift() ?? ''
    }
    const frame = readServerFrame(raw)
    switch (frame.kind) {
      case 'invalid':
        throw new Error(`${frame.problem}: ${typeof raw === 'string' ? raw : '(binary)'}`)
      case 'welcome':
        throw new Error(`a second welcome on connection ${String(this.id)}`)
      case 'ack':
        // A position advance: nothing for this session up to `last` is still to come.
        if (frame.last !== undefined) this.#last = Math.max(this.#last, frame.last)
        this.handledByServer = Math.max(this.handledByServer, frame.handled)
        for (const c of [...this.#unacked.keys()]) if (c <= frame.handled) this.#unacked.delete(c)
        return undefined
      case 'presence':
        this.#presence.push({ frame: frame.presence, raw: raw as string })
        return undefined
      case 'other':
        return undefined
      case 'data': {
        if (frame.seq <= this.#last)
          throw new Error(`frame ${String(frame.seq)} is not above last ${String(this.#last)}`)
        this.#last = frame.seq
        const { payload } = frame
        return {
          seq: frame.seq,
          payload: typeof payload === 'string' ? payload : new TextDecoder().decode(payload),
          ...(frame.mark === undefined ? {} : { mark: frame.mark }),
        }
      }
    }
  }
}

/**
 * A cut of every socket of the object, and a restart: the runtime ends each
 * socket with 1006 and calls no webSocketClose (runtime.test.ts pins it), as
 * a deploy or a crash does. The object's next instance has to find out.
 */
export async function evictWithSockets(
  stub: DurableObjectStub<Rpc.DurableObjectBranded | undefined>,
  ...clients: SessionClient[]
): Promise<void> {
  await evictDurableObject(stub, { webSockets: 'close' })
  for (const client of clients) {
    const closed = await client.whenClosed()
    if (closed.code !== 1006) throw new Error(`expected 1006 after eviction, got ${String(closed.code)}`)
  }
}
