import { DurableWebSocketError, InvalidMessageError, ReplyError } from '../core/errors.js'
import type { EventHandlers, EventName, Incoming, MessageInfo } from '../core/events.js'
import { isLive } from '../core/lifecycle.js'
import { log } from '../core/log.js'
import { runChecks, type Checked } from '../core/messageCheck.js'
import { toFrame, type Frame } from '../core/outgoing.js'
import type { Failure } from '../shared/dataFrames.js'
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

const REFUSED_NO_HANDLER: Answer = {
  ok: false,
  failure: { code: 'refused', message: 'This endpoint takes no requests.' },
}
const REFUSED_INVALID: Answer = {
  ok: false,
  failure: { code: 'refused', message: 'The request is not valid.' },
}

/** A plain connection's messages have no number; one object serves them all. */
const UNNUMBERED: MessageInfo = Object.freeze({ seq: undefined })

/**
 * Runs the app's handlers: decodes and checks a message, calls its
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
    const validate = this.#options.validate
    const own = this.#options.handlers.messageCheck
    let decoded: unknown
    let checked: Checked | Promise<Checked> | undefined
    try {
      decoded = serializer.decode(raw)
      // Without any check, nothing is allocated on this, every message's, path.
      if (validate !== undefined || own !== undefined) checked = runChecks(decoded, validate, own)
    } catch (error) {
      return this.#malformed(entry, raw, error, after)
    }
    if (checked instanceof Promise) return this.#afterAsyncCheck(entry, raw, checked, info, after)
    const value = (checked === undefined ? decoded : checked.value) as In
    return this.#invoke(entry, 'message', (message) => message(entry.view, value, info), after)
  }

  /**
   * A schema with async checks: the message's turn in the queue lasts until
   * its handler is done, so later messages wait behind the check as they
   * would behind an async handler, and `handlerTimeout` bounds the two.
   */
  #afterAsyncCheck(
    entry: ConnectionEntry<Env, Data, In, Out>,
    raw: string,
    checked: Promise<Checked>,
    info: MessageInfo,
    after: (() => void) | undefined,
  ): Promise<unknown> {
    return this.#timeLimited(checked, 'message').then(
      ({ value }) =>
        this.#invoke(entry, 'message', (message) => message(entry.view, value as In, info), after),
      (error: unknown) => {
        if (error instanceof InvalidMessageError) return this.#malformed(entry, raw, error, after)
        this.#failed(entry, 'message', error)
        after?.()
        return undefined
      },
    )
  }

  /** Text that did not decode or failed a check: `malformed_message`, or close 1007 without one. */
  #malformed(
    entry: ConnectionEntry<Env, Data, In, Out>,
    raw: string,
    error: unknown,
    after: (() => void) | undefined,
  ): unknown {
    if (this.#options.handlers.get('malformed_message') === undefined) {
      // Neither the error nor the text goes into the log: both hold what the client sent.
      const what =
        error instanceof InvalidMessageError ? 'that failed validate' : 'the serializer cannot decode'
      log.warn(`${entry.label(this.#room)} sent a message ${what}, closing it with 1007`)
      this.#close(entry, CloseCode.INVALID_PAYLOAD, 'Malformed message')
      after?.()
      return undefined
    }
    return this.#invoke(entry, 'malformed_message', (malformed) => malformed(entry.view, raw, error), after)
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
    if (handler === undefined) {
      finish(REFUSED_NO_HANDLER)
      return undefined
    }
    let checked: Checked | Promise<Checked>
    try {
      checked = this.#check(raw)
    } catch {
      finish(REFUSED_INVALID)
      return undefined
    }
    const run = (message: unknown): unknown => {
      let result: unknown
      try {
        result = handler(entry.view, message as Incoming<In>, { seq })
      } catch (error) {
        finish(this.#failure(entry, error))
        return undefined
      }
      if (!(result instanceof Promise)) {
        finish(this.#reply(entry, result))
        return undefined
      }
      return this.#timeLimited(result, 'request').then(
        (value) => {
          finish(this.#reply(entry, value))
        },
        (error: unknown) => {
          finish(this.#failure(entry, error))
        },
      )
    }
    if (!(checked instanceof Promise)) return run(checked.value)
    return this.#timeLimited(checked, 'request').then(
      ({ value }) => run(value),
      () => {
        finish(REFUSED_INVALID)
      },
    )
  }

  /** A request as its handler gets it: decoded and checked by `validate` (not a message's own schema), or bytes as they came. */
  #check(raw: string | ArrayBuffer): Checked | Promise<Checked> {
    const serializer = this.#options.serializer
    if (typeof raw !== 'string' || serializer === undefined) return { value: raw }
    return runChecks(serializer.decode(raw), this.#options.validate, undefined)
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
  #timeLimited<T>(result: Promise<T>, event: EventName): Promise<T> {
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
