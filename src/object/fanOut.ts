import type { Connection } from '../core/connection.js'
import type { BroadcastOptions } from '../core/manager.js'
import type { Frame } from '../core/outgoing.js'

function isExcepted(id: number, except: BroadcastOptions['except']): boolean {
  if (except === undefined) return false
  return typeof except === 'number' ? except === id : except.includes(id)
}

/**
 * Sends one already encoded frame to many connections and counts those it
 * reached. A send that throws costs only its own connection (`onFailure`
 * decides what happens to it); the loop goes on with the others.
 */
export function fanOut<Env, Data extends object, Message>(
  targets: Iterable<Connection<Env, Data, Message>>,
  frame: Frame,
  { except }: BroadcastOptions,
  onFailure: (conn: Connection<Env, Data, Message>, error: unknown) => void,
): number {
  let sent = 0
  for (const conn of targets) {
    if (isExcepted(conn.id, except)) continue
    try {
      if (conn.sendFrame(frame)) sent++
    } catch (error) {
      onFailure(conn, error)
    }
  }
  return sent
}
