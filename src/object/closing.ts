import { log } from '../core/log.js'
import {
  CloseCode,
  MAX_CLOSE_REASON_BYTES,
  isSendableCloseCode,
  peerClose,
  utf8Length,
} from '../shared/closeCodes.js'
import { CLOSED, type ConnectionEntry } from './connection.js'
import type { ConnectionTable } from './connectionTable.js'

/** Queues the `close` handler; Dispatch's `queueEvent`. */
type QueueClose<Env, Data extends object, In, Out> = (
  entry: ConnectionEntry<Env, Data, In, Out>,
  event: 'close',
  code: number,
  reason: string,
) => Promise<void> | undefined

/**
 * Every way a connection closes, from either side. Each moves the
 * connection's state once (a second close means nothing), takes it out of
 * the table, and lets its transport decide whether it ends, which queues
 * `close` behind its pending handlers, or lives on as a suspended session.
 */
export class Closing<Env, Data extends object, In, Out> {
  readonly #ctx: DurableObjectState
  readonly #table: ConnectionTable<Env, Data, In, Out>
  readonly #queueClose: QueueClose<Env, Data, In, Out>
  readonly #room: string | undefined

  constructor(
    ctx: DurableObjectState,
    table: ConnectionTable<Env, Data, In, Out>,
    queueClose: QueueClose<Env, Data, In, Out>,
  ) {
    this.#ctx = ctx
    this.#table = table
    this.#queueClose = queueClose
    this.#room = ctx.id.name
  }

  /**
   * The server closes: its frame goes out, and `close` is queued behind the
   * pending handlers. With `drain`, the messages already queued are still
   * handled first; otherwise they are dropped.
   */
  byServer(
    entry: ConnectionEntry<Env, Data, In, Out>,
    code: number,
    reason: string,
    event: 'serverClose' | 'drain' = 'serverClose',
  ): void {
    const transport = entry.transport
    const survives = transport.survives(code, 'server')
    if (!entry.move(survives ? 'suspend' : event)) return
    this.#table.remove(entry)
    if (!survives) transport.ended(entry)
    try {
      entry.socket.close(code, reason)
    } catch (error) {
      // The runtime closed the socket first; `close` still runs, once.
      log.warn(`closing ${entry.label(this.#room)} failed:`, error)
    }
    const after = survives ? transport.suspend(entry, code, reason) : this.end(entry, code, reason)
    if (after !== undefined) this.#ctx.waitUntil(after)
  }

  /**
   * The runtime's close event: the client closed, or the connection was lost;
   * a close we started only needed answering. `close` gets the code and
   * reason as a client may send them: a code no endpoint may send becomes
   * 1005 without a reason, so only a real loss reads 1006, and a reason is
   * cut to 123 bytes (peerClose).
   */
  closed(
    entry: ConnectionEntry<Env, Data, In, Out> | undefined,
    socket: WebSocket,
    code: number,
    reason: string,
    wasClean: boolean,
  ): Promise<void> | undefined {
    // A socket the runtime already closed has nothing left to answer.
    if (socket.readyState !== CLOSED) answerClose(socket, code, reason)
    if (entry === undefined) return undefined
    const seen = peerClose(code, reason, wasClean)
    return this.byPeer(entry, seen.code, seen.reason)
  }

  /**
   * The client closed or the connection was lost. A session's socket lost
   * without a final close is suspended instead: `close` waits for the window
   * to pass without a resume.
   */
  byPeer(
    entry: ConnectionEntry<Env, Data, In, Out>,
    code: number,
    reason: string,
  ): Promise<void> | undefined {
    const transport = entry.transport
    if (transport.survives(code, 'peer')) {
      if (!entry.move('suspend')) return undefined
      this.#table.remove(entry)
      return transport.suspend(entry, code, reason)
    }
    if (!entry.move('peerClose')) return undefined
    this.#table.remove(entry)
    transport.ended(entry)
    return this.end(entry, code, reason)
  }

  /**
   * Closes connections silent for longer than `timeout` with 1001; returns
   * when the next one would be due. The runtime answers heartbeat pings
   * without waking the object and only keeps their time, which counts too.
   */
  reapIdle(now: number, timeout: number | undefined): number | undefined {
    if (timeout === undefined) return undefined
    let next: number | undefined
    for (const entry of [...this.#table.live()]) {
      const pinged = this.#ctx.getWebSocketAutoResponseTimestamp(entry.socket)?.getTime() ?? 0
      const idleAt = Math.max(entry.seen, pinged) + timeout
      if (idleAt <= now) {
        log.warn(`${entry.label(this.#room)} was idle for ${String(timeout)} ms, closing it with 1001`)
        this.byServer(entry, CloseCode.GOING_AWAY, 'Idle timeout')
      } else if (next === undefined || idleAt < next) {
        next = idleAt
      }
    }
    return next
  }

  /** Queues `close` for a connection that has ended, whichever way. */
  end(entry: ConnectionEntry<Env, Data, In, Out>, code: number, reason: string): Promise<void> | undefined {
    return this.#queueClose(entry, 'close', code, reason)
  }
}

/**
 * Sends our close frame back after the peer's. workerd does not do this for
 * hibernatable sockets, not even at compatibility date 2026-10-23
 * (test/workerd/runtime.test.ts pins it), and after a 1006 (no close frame,
 * e.g. a peer that half-closed its TCP connection) closing our end still
 * releases the connection now rather than when the object next hibernates.
 */
function answerClose(socket: WebSocket, code: number, reason: string): void {
  try {
    // Echo the peer's code where it may be sent back; 1005 (no code) and codes reserved for
    // reporting get an empty close frame, which is always valid. A peer's reason over the
    // control-frame limit cannot be sent back, so the code goes alone.
    if (!isSendableCloseCode(code)) socket.close()
    else if (utf8Length(reason) > MAX_CLOSE_REASON_BYTES) socket.close(code)
    else socket.close(code, reason)
  } catch {
    // Already closed by the runtime: nothing left to answer.
  }
}
