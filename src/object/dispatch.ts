import { DurableWebSocketError, InvalidMessageError } from '../core/errors.js'
import type { EventHandlers, EventName, Incoming, MessageInfo } from '../core/events.js'
import { isLive } from '../core/lifecycle.js'
import { log } from '../core/log.js'
import { runChecks, type Checked } from '../core/messageCheck.js'
import type { ObjectSide } from '../options.js'
import { CloseCode } from '../shared/closeCodes.js'
import { OPEN, type ConnectionEntry } from './connection.js'
import type { CloseByServer } from './messageLimits.js'

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
    let checked: Checked | Promise<Checked>
    try {
      checked = runChecks(serializer.decode(raw), this.#options.validate, this.#options.handlers.messageCheck)
    } catch (error) {
      return this.#malformed(entry, raw, error, after)
    }
    if (checked instanceof Promise) return this.#afterAsyncCheck(entry, raw, checked, info, after)
    return this.#invoke(entry, 'message', (message) => message(entry.view, checked.value as In, info), after)
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
