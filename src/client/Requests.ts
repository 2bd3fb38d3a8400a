import { describe } from '../shared/describe.js'
import type { Frame, Serializer } from '../shared/serializer.js'
import { readFailure } from '../shared/dataFrames.js'
import { ClientError } from './ClientError.js'

/** How long `request()` waits for its reply by default, in ms. */
export const DEFAULT_REQUEST_TIMEOUT = 10_000

/** What `request()` takes besides the message. */
export interface RequestOptions {
  /** Reject with `timeout` after this many ms without a reply. Default: 10000. */
  timeout?: number
}

/** The timeout a `request()` asked for, checked: a mistake throws at once, before anything is sent. */
export function requestTimeout(options: RequestOptions): number {
  const timeout = options.timeout ?? DEFAULT_REQUEST_TIMEOUT
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new ClientError(
      'ERR_DWS_INVALID_OPTIONS',
      `request()'s timeout must be a positive number of ms, got ${describe(timeout)}.`,
    )
  return timeout
}

/** The codes a request can fail with on the client's side; a server's `ReplyError` may name its own. */
export type RequestErrorCode = 'timeout' | 'closed' | 'refused' | 'failed' | (string & {})

/**
 * Why `client.request()` rejected: `timeout` (no reply in time; the request
 * may still run), `closed` (the client closed, or its session was reset, before
 * the reply came; it may or may not have run), `refused` (never run: no
 * session, too many in flight, or the server would not take it), `failed`
 * (its handler threw), or a code the server's handler chose with a `ReplyError`.
 */
export class RequestError extends Error {
  readonly code: RequestErrorCode

  constructor(code: RequestErrorCode, message: string) {
    super(message)
    this.name = 'RequestError'
    this.code = code
  }
}

/** Why a client without a session cannot send requests. */
export const NO_SESSION = new RequestError(
  'refused',
  'request() needs a durable session: a durable-websocket server, and no session: false.',
)

/** A reply's payload as the app gets it: text through the serializer, bytes as they came. */
export function decodeReply<Incoming>(
  payload: string | ArrayBuffer,
  serializer: Serializer<Incoming, unknown>,
): Incoming {
  if (typeof payload !== 'string') return payload as Incoming
  try {
    return serializer.decode(payload)
  } catch {
    throw new RequestError('failed', 'The reply could not be decoded.')
  }
}

/** Where a new request goes: written now (returning its number, or undefined when the window is full), or queued. */
export interface RequestRoute {
  /** The server's `maxRequests`, once a welcome said it. */
  readonly max: number | undefined
  readonly write: (() => number | undefined) | undefined
  readonly queue: (queued: QueuedRequest) => boolean
}

const FULL = (): RequestError => new RequestError('refused', 'The queue is full (maxQueued).')

/** A request waiting for a socket in the client's queue; it gets its number when it goes out. */
export class QueuedRequest {
  readonly frame: Frame
  readonly pending: PendingRequest

  constructor(frame: Frame, pending: PendingRequest) {
    this.frame = frame
    this.pending = pending
  }
}

/** One request's promise, settled once: by its reply, its failure, its timeout or the client's end. */
export interface PendingRequest {
  /** Its `c` once sent; undefined while it waits in the queue. */
  seq: number | undefined
  settled: boolean
}

interface Waiting extends PendingRequest {
  resolve(payload: string | ArrayBuffer): void
  reject(error: RequestError): void
  timer: ReturnType<typeof setTimeout> | undefined
}

/** The client's requests in flight: their promises, timers, and the replies that settle them. */
export class Requests {
  readonly #waiting = new Set<Waiting>()
  readonly #bySeq = new Map<number, Waiting>()

  get size(): number {
    return this.#waiting.size
  }

  /** Sends (or queues) one request and returns the promise of its reply's payload. */
  send(frame: Frame, timeout: number, route: RequestRoute): Promise<string | ArrayBuffer> {
    if (route.max !== undefined && this.size >= route.max)
      return Promise.reject(
        new RequestError(
          'refused',
          `${String(route.max)} requests are already waiting for replies, the server's maxRequests.`,
        ),
      )
    const { pending, reply } = this.open(timeout)
    if (route.write !== undefined) {
      const seq = route.write()
      if (seq === undefined) this.refuse(pending, FULL())
      else this.sent(pending, seq)
    } else if (!route.queue(new QueuedRequest(frame, pending))) {
      this.refuse(pending, FULL())
    }
    return reply
  }

  /** A new request's promise, rejected with `timeout` after `timeout` ms without a reply. */
  open(timeout: number): { pending: PendingRequest; reply: Promise<string | ArrayBuffer> } {
    let waiting: Waiting | undefined
    const reply = new Promise<string | ArrayBuffer>((resolve, reject) => {
      waiting = { seq: undefined, settled: false, resolve, reject, timer: undefined }
    })
    const opened = waiting as unknown as Waiting
    this.#waiting.add(opened)
    opened.timer = setTimeout(() => {
      this.#settle(opened, new RequestError('timeout', `No reply within ${String(timeout)} ms.`))
    }, timeout)
    return { pending: opened, reply }
  }

  /** The request went out with number `seq`: its reply will name it. */
  sent(pending: PendingRequest, seq: number): void {
    const waiting = pending as Waiting
    waiting.seq = seq
    if (!waiting.settled) this.#bySeq.set(seq, waiting)
  }

  /** A reply (`ok`) or failure for request `to`; one nobody waits for any more (timed out, or from before a reload) is dropped. */
  answered(to: number, ok: boolean, payload: string | ArrayBuffer): void {
    const waiting = this.#bySeq.get(to)
    if (waiting === undefined) return
    if (ok) {
      this.#settle(waiting, payload)
      return
    }
    const failure = readFailure(payload) ?? { code: 'failed', message: 'The request failed on the server.' }
    this.#settle(waiting, new RequestError(failure.code, failure.message))
  }

  /** Rejects one request that never went out. */
  refuse(pending: PendingRequest, error: RequestError): void {
    this.#settle(pending as Waiting, error)
  }

  /** Rejects the requests already sent (a reset), or all of them (the client closed). */
  fail(error: RequestError, which: 'sent' | 'all'): void {
    for (const waiting of [...this.#waiting]) {
      if (which === 'all' || waiting.seq !== undefined) this.#settle(waiting, error)
    }
  }

  #settle(waiting: Waiting, outcome: string | ArrayBuffer | RequestError): void {
    if (waiting.settled) return
    waiting.settled = true
    if (waiting.timer !== undefined) clearTimeout(waiting.timer)
    this.#waiting.delete(waiting)
    if (waiting.seq !== undefined) this.#bySeq.delete(waiting.seq)
    if (outcome instanceof RequestError) waiting.reject(outcome)
    else waiting.resolve(outcome)
  }
}
