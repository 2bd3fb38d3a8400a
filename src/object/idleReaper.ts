import { CloseCode } from '../core/closeCodes.js'
import type { Connection } from '../core/connection.js'
import { log } from '../core/log.js'

/**
 * A connection counts as active when it last sent a message or a heartbeat
 * ping; the runtime answers pings without waking the object and only keeps
 * their time, which is why both are read here.
 */
function lastActivity<Env, Data extends object, Message>(
  conn: Connection<Env, Data, Message>,
  ctx: DurableObjectState,
): number {
  const pinged = ctx.getWebSocketAutoResponseTimestamp(conn.socket)?.getTime() ?? 0
  return Math.max(conn.seen, pinged)
}

/**
 * Closes every connection silent for `timeout` ms or more with 1001, and
 * returns when the next one could go idle (for the alarm), or undefined when
 * none is left to watch.
 */
export function reapIdle<Env, Data extends object, Message>(
  connections: Iterable<Connection<Env, Data, Message>>,
  ctx: DurableObjectState,
  timeout: number,
  now: number,
): number | undefined {
  let next: number | undefined
  for (const conn of [...connections]) {
    const idleAt = lastActivity(conn, ctx) + timeout
    if (idleAt <= now) {
      log.warn(`${conn.label} was idle for ${String(timeout)} ms, closing it with 1001`)
      try {
        conn.close(CloseCode.GOING_AWAY, 'Idle timeout')
      } catch (error) {
        log.warn(`closing idle ${conn.label} failed:`, error)
      }
    } else if (next === undefined || idleAt < next) {
      next = idleAt
    }
  }
  return next
}
