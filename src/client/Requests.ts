import type { Frame } from '../shared/serializer.js'

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

  /** A reply (or failure) for request `to`; one nobody waits for any more (timed out, or from before a reload) is dropped. */
  answered(to: number, outcome: { payload: string | ArrayBuffer } | { error: RequestError }): void {
    const waiting = this.#bySeq.get(to)
    if (waiting === undefined) return
    this.#settle(waiting, 'error' in outcome ? outcome.error : outcome.payload)
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
