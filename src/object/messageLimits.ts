import { log } from '../core/log.js'
import type { ObjectSide } from '../options.js'
import { sizeOf } from '../shared/byteSize.js'
import { CloseCode } from '../shared/closeCodes.js'
import type { ConnectionEntry } from './connection.js'

/** How a limit closes a connection: `drain` still handles what it had queued. */
export type CloseByServer<Env, Data extends object, In, Out> = (
  entry: ConnectionEntry<Env, Data, In, Out>,
  code: number,
  reason: string,
  event?: 'serverClose' | 'drain',
) => void

/**
 * The limits on what a client may send, checked as each message arrives,
 * before it is queued: `maxMessageBytes`, `rateLimit`, then `maxQueued`.
 * Past one, the connection is closed at once; past the last two, what it had
 * queued is still handled. Owns the `rateLimit` buckets.
 */
export class MessageLimits<Env, Data extends object, In, Out> {
  readonly #options: LimitOptions
  readonly #room: string | undefined
  readonly #close: CloseByServer<Env, Data, In, Out>
  /** Each connection's `rateLimit` bucket; a woken object starts them full. */
  readonly #buckets = new WeakMap<ConnectionEntry<Env, Data, In, Out>, Bucket>()

  constructor(options: LimitOptions, room: string | undefined, close: CloseByServer<Env, Data, In, Out>) {
    this.#options = options
    this.#room = room
    this.#close = close
  }

  /** Whether a message may be queued; if not, its connection is already being closed. */
  admit(entry: ConnectionEntry<Env, Data, In, Out>, raw: string | ArrayBuffer): boolean {
    return this.#withinSize(entry, raw) && this.#withinRate(entry) && this.#withinQueue(entry, raw)
  }

  /** Closes a connection whose message is over `maxMessageBytes`; records activity for idle reaping. */
  #withinSize(entry: ConnectionEntry<Env, Data, In, Out>, raw: string | ArrayBuffer): boolean {
    const limit = this.#options.maxMessageBytes
    if (receivedExceeds(raw, limit)) {
      log.warn(`${entry.label(this.#room)} sent a message over ${String(limit)} bytes, closing it with 1009`)
      this.#close(entry, CloseCode.MESSAGE_TOO_BIG, 'Message too big')
      return false
    }
    // Only idle reaping reads the activity time; without it, not even the clock is read.
    if (this.#options.idleTimeout !== undefined) entry.seen = Date.now()
    return true
  }

  /** A token bucket refilled from the clock as messages arrive: no timer keeps the object awake. */
  #withinRate(entry: ConnectionEntry<Env, Data, In, Out>): boolean {
    const limit = this.#options.rateLimit
    if (limit === undefined) return true
    const now = Date.now()
    const bucket = this.#buckets.get(entry)
    if (bucket === undefined) {
      this.#buckets.set(entry, { tokens: limit.messages - 1, at: now })
      return true
    }
    const refill = ((now - bucket.at) * limit.messages) / limit.per
    bucket.tokens = Math.min(limit.messages, bucket.tokens + refill)
    bucket.at = now
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return true
    }
    log.warn(`${entry.label(this.#room)} sent faster than rateLimit allows, closing it with 1008`)
    this.#close(entry, CloseCode.POLICY_VIOLATION, 'Rate limit exceeded', 'drain')
    return false
  }

  #withinQueue(entry: ConnectionEntry<Env, Data, In, Out>, raw: string | ArrayBuffer): boolean {
    const { messages, bytes } = this.#options.maxQueued
    const queue = entry.queue
    if (queue.waiting < messages && queue.waitingSize + sizeOf(raw) <= bytes) return true
    log.warn(
      `${entry.label(this.#room)} has ${String(queue.waiting)} messages queued behind a running handler, over maxQueued; closing it with 1013`,
    )
    this.#close(entry, CloseCode.TRY_AGAIN_LATER, 'Too many queued messages', 'drain')
    return false
  }
}

type LimitOptions = Pick<
  ObjectSide<unknown, object, unknown, unknown, object>,
  'maxMessageBytes' | 'idleTimeout' | 'rateLimit' | 'maxQueued'
>

interface Bucket {
  tokens: number
  /** When the bucket was last refilled, in ms since the epoch. */
  at: number
}

const utf8 = new TextEncoder()

/**
 * Whether a received message is over `limit` bytes. A UTF-8 character takes
 * one to three bytes per UTF-16 unit, so most strings are decided from their
 * length alone and only the ambiguous ones are encoded.
 */
function receivedExceeds(message: string | ArrayBuffer, limit: number): boolean {
  if (typeof message !== 'string') return message.byteLength > limit
  if (message.length > limit) return true
  if (message.length * 3 <= limit) return false
  return utf8.encode(message).byteLength - 2 * countReplacements(message) > limit
}

/**
 * workerd decodes a text frame's invalid bytes to U+FFFD, three bytes in
 * UTF-8, where each stood for at least one byte on the wire. Counting each
 * as one keeps a message that was under the limit on the wire under it
 * here, and the length check above still bounds what the string costs.
 */
function countReplacements(message: string): number {
  let count = 0
  for (let at = message.indexOf(REPLACEMENT); at !== -1; at = message.indexOf(REPLACEMENT, at + 1)) count++
  return count
}

const REPLACEMENT = '\uFFFD'
