import { DurableWebSocketError, ReplyError } from '../core/errors.js'
import type { EventHandlers, EventName, Incoming, MessageInfo } from '../core/events.js'
import { isLive } from '../core/lifecycle.js'
import { log } from '../core/log.js'
import { toFrame, type Frame } from '../core/outgoing.js'
import type { Failure } from '../shared/sessionProtocol.js'
import type { ObjectSide } from '../options.js'
import { CloseCode } from '../shared/closeCodes.js'
import { OPEN, type ConnectionEntry } from './connection.js'
import type { CloseByServer } from './messageLimits.js'

/** How a request ended: its reply's frame, or why there is none. */
export type Answer =
  { readonly ok: true; readonly frame: Frame } | { readonly ok: false; readonly failure: Failure }

/** What the client learns of a handler's error that is not a ReplyError: nothing of its text. */
const FAILED: Answer = {
  ok: false,
  failure: { code: 'failed', message: 'The request failed on the server.' },
}

/** A plain connection's messages have no number; one object serves them all. */
const UNNUMBERED: MessageInfo = Object.freeze({ seq: undefined })

/**
 * Runs the app's handlers: decodes and validates a message, calls its
 * handler, bounds it by `handlerTimeout`, and stores `data` afterwards.
 * Whatever a handler throws or rejects with is logged here and costs only its
 * own connection (closed with 1011).
 */
export class Dispatch<Env, Data extends object, In, Out, L extends object> {
  readonly #options: ObjectSide<Env, Data, In, Out, L>
  readonly #room: string | undefined
  readonly #close: CloseByServer<Env, Data, In, Out>

  constructor(
    options: ObjectSide<Env, Data, In, Out, L>,
    room: string | undefined,
    close: CloseByServer<Env, Data, In, Out>,
  ) {
    this.#options = options
    this.#room = room
    this.#close = close
  }

  /** Queues `open` for a connection just accepted (or resumed). */
  open(entry: ConnectionEntry<Env, Data, In, Out>, request: Request, locals: L): Promise<void> | undefined {
    return entry.queue.run(() => this.#invoke(entry, 'open', (open) => open(entry.view, request, locals)))
  }

  /** Queues `close` or `suspend` behind whatever the connection still has queued. */
  queueEvent(
    entry: ConnectionEntry<Env, Data, In, Out>,
    event: 'close' | 'suspend',
    code: number,
    reason: string,
  ): Promise<void> | undefined {
    return entry.queue.run(() => this.#invoke(entry, event, (handler) => handler(entry.view, code, reason)))
  }

  /**
   * One message, already admitted and at the front of its queue. `after`
   * runs once the handler is done, whichever way, in the same turn as `data`
   * is stored: a session marks the message handled there.
   */
  message(
    entry: ConnectionEntry<Env, Data, In, Out>,
    raw: string | ArrayBuffer,
    seq?: number,
    after?: () => void,
  ): unknown {
    const info = seq === undefined ? UNNUMBERED : { seq }
    const serializer = this.#options.serializer
    if (typeof raw !== 'string' || serializer === undefined) {
      return this.#invoke(
        entry,
        'message',
        (message) => message(entry.view, raw as Incoming<In>, info),
        after,
      )
    }
    // Inline rather than through #decode: this is every message's path, and it allocates nothing.
    let decoded: In
    try {
      decoded = serializer.decode(raw)
      checkShape(this.#options.validate, decoded)
    } catch (error) {
      if (this.#options.handlers.get('malformed_message') === undefined) {
        // Neither the error nor the text goes into the log: both hold what the client sent.
        const what = isInvalidMessage(error) ? 'that failed validate' : 'the serializer cannot decode'
        log.warn(`${entry.label(this.#room)} sent a message ${what}, closing it with 1007`)
        this.#close(entry, CloseCode.INVALID_PAYLOAD, 'Malformed message')
        after?.()
        return undefined
      }
      return this.#invoke(entry, 'malformed_message', (malformed) => malformed(entry.view, raw, error), after)
    }
    return this.#invoke(entry, 'message', (message) => message(entry.view, decoded, info), after)
  }

  /**
   * One request, already admitted and at the front of its queue. `answer`
   * gets the reply (what the handler returned) or why there is none: a
   * request this endpoint cannot take is `refused` without running anything,
   * one whose handler threw is `failed` (or the ReplyError's code). A failed
   * request costs its connection nothing. `after` runs as for a message.
   */
  request(
    entry: ConnectionEntry<Env, Data, In, Out>,
    raw: string | ArrayBuffer,
    seq: number,
    answer: (outcome: Answer) => void,
    after: () => void,
  ): unknown {
    const finish = (outcome: Answer): void => {
      answer(outcome)
      this.#storeAfter(entry, 'request')
      after()
    }
    const handler = this.#options.handlers.get('request')
    const decoded = this.#decode(raw)
    if (handler === undefined || 'error' in decoded) {
      const why = handler === undefined ? 'This endpoint takes no requests.' : 'The request is not valid.'
      finish({ ok: false, failure: { code: 'refused', message: why } })
      return undefined
    }
    let result: unknown
    try {
      result = handler(entry.view, decoded.message, { seq })
    } catch (error) {
      finish(this.#failure(entry, error))
      return undefined
    }
    if (result instanceof Promise) {
      return this.#timeLimited(result, 'request').then(
        (value) => {
          finish(this.#reply(entry, value))
        },
        (error: unknown) => {
          finish(this.#failure(entry, error))
        },
      )
    }
    finish(this.#reply(entry, result))
    return undefined
  }

  /** A message as the handlers get it: decoded and validated text, or bytes as they came. */
  #decode(raw: string | ArrayBuffer): { message: Incoming<In> } | { error: unknown } {
    const serializer = this.#options.serializer
    if (typeof raw !== 'string' || serializer === undefined) return { message: raw as Incoming<In> }
    try {
      const decoded = serializer.decode(raw)
      checkShape(this.#options.validate, decoded)
      return { message: decoded }
    } catch (error) {
      return { error }
    }
  }

  /** A handler's return value as a reply frame; nothing (undefined) is `null`, or an empty text without a serializer. */
  #reply(entry: ConnectionEntry<Env, Data, In, Out>, value: unknown): Answer {
    const serializer = this.#options.serializer
    try {
      if (value === undefined || value === null)
        return { ok: true, frame: serializer === undefined ? '' : serializer.encode(null as Out) }
      return { ok: true, frame: toFrame(value, serializer) }
    } catch (error) {
      log.error(
        `the request handler of ${entry.label(this.#room)} returned a reply that cannot be sent:`,
        error,
      )
      return FAILED
    }
  }

  #failure(entry: ConnectionEntry<Env, Data, In, Out>, error: unknown): Answer {
    if (error instanceof ReplyError)
      return { ok: false, failure: { code: error.code, message: error.message } }
    log.error(`the request handler failed for ${entry.label(this.#room)}:`, error)
    return FAILED
  }

  /** Runs one handler; `data` is stored afterwards so changes made in it survive hibernation. */
  #invoke<E extends Exclude<EventName, 'error'>>(
    entry: ConnectionEntry<Env, Data, In, Out>,
    event: E,
    call: (handler: EventHandlers<Env, Data, In, Out, L>[E]) => unknown,
    after?: () => void,
  ): unknown {
    const handler = this.#options.handlers.get(event)
    if (handler === undefined) {
      // Nothing changed `data`, but a new record or the activity time still has to be stored.
      this.#storeAfter(entry, event)
      after?.()
      return undefined
    }
    let result: unknown
    try {
      result = call(handler)
    } catch (error) {
      this.#failed(entry, event, error)
      after?.()
      return undefined
    }
    if (result instanceof Promise) {
      return this.#timeLimited(result, event).then(
        () => {
          this.#storeAfter(entry, event)
          after?.()
        },
        (error: unknown) => {
          this.#failed(entry, event, error)
          after?.()
        },
      )
    }
    this.#storeAfter(entry, event)
    after?.()
    return undefined
  }

  /**
   * A handler still pending after `handlerTimeout` counts as failed: its
   * connection is closed with 1011 and its queue goes on, so a promise that
   * never settles cannot hold back later messages or `close`. The timer
   * exists only while a handler is pending, when the object is awake anyway.
   */
  #timeLimited(result: Promise<unknown>, event: EventName): Promise<unknown> {
    const limit = this.#options.handlerTimeout
    if (limit === undefined) return result
    let timer: ReturnType<typeof setTimeout> | undefined
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(
          new DurableWebSocketError(
            'ERR_DWS_HANDLER_TIMEOUT',
            `the ${event} handler was still pending after ${String(limit)} ms (handlerTimeout), so it counts as failed. Make sure every promise it awaits settles, or raise handlerTimeout.`,
          ),
        )
      }, limit)
    })
    return Promise.race([result, expired]).finally(() => {
      if (timer !== undefined) clearTimeout(timer)
    })
  }

  /**
   * Stores `data` after a handler, unless nothing can have changed: an
   * attachment write per message is the largest cost a plain echo pays
   * (bench/RESULTS.md). With idle reaping on, the activity time is stored
   * every time too, since a woken object only knows what the attachment says.
   */
  #storeAfter(entry: ConnectionEntry<Env, Data, In, Out>, event: EventName): void {
    if (!entry.needsStore && this.#options.idleTimeout === undefined) return
    if (entry.transport.keepsData(entry)) return
    if (!isLive(entry.state) || entry.socket.readyState !== OPEN) return
    try {
      entry.store()
    } catch (error) {
      log.error(`after the ${event} handler, ${entry.label(this.#room)}:`, error)
    }
  }

  #failed(entry: ConnectionEntry<Env, Data, In, Out>, event: EventName, error: unknown): void {
    if (!isLive(entry.state)) {
      log.error(`the ${event} handler failed for ${entry.label(this.#room)}:`, error)
      return
    }
    log.error(`the ${event} handler failed for ${entry.label(this.#room)}, closing it with 1011:`, error)
    this.#close(entry, CloseCode.INTERNAL_ERROR, 'Internal Error')
  }
}

/**
 * Throws ERR_DWS_INVALID_MESSAGE when the validator refuses the message, or
 * throws on it (a validator that reads `message.type` throws on `null`): a
 * handler can then tell a message of the wrong shape from one that did not decode.
 */
function checkShape(validate: ((message: unknown) => boolean) | undefined, message: unknown): void {
  if (validate === undefined) return
  let valid: boolean
  try {
    valid = validate(message)
  } catch (cause) {
    throw new DurableWebSocketError('ERR_DWS_INVALID_MESSAGE', 'The validator threw on the message.', {
      cause,
    })
  }
  if (!valid)
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_MESSAGE',
      'The message does not have the expected shape.',
    )
}

function isInvalidMessage(error: unknown): boolean {
  return error instanceof DurableWebSocketError && error.code === 'ERR_DWS_INVALID_MESSAGE'
}
