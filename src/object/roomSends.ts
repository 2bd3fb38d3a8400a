import type { Frame } from '../core/outgoing.js'
import type { BroadcastOptions } from '../core/types.js'
import { numbered } from '../shared/dataFrames.js'
import type { ConnectionEntry } from './connection.js'
import type { ConnectionTable } from './connectionTable.js'
import type { SessionSends } from './session/sends.js'
import type { SessionLog } from './session/log.js'
import type { NumberedMessage } from './shard/messages.js'
import type { ShardSide } from './shard/side.js'
import type { Outbound } from './transport.js'

type Entry<Env, Data extends object, In, Out> = ConnectionEntry<Env, Data, In, Out>

/**
 * What the room sends to many at once: `broadcast` and `to(tag)`, and on a
 * sharded room's leaf the messages the root numbered. In an ordinary room
 * the frame is logged once for the sessions and handed to every target's
 * transport; in a sharded room a broadcast goes to the root first, and
 * reaches this leaf's sockets through {@link deliverOrdered}.
 */
export class RoomSends<Env, Data extends object, In, Out> {
  readonly #table: ConnectionTable<Env, Data, In, Out>
  readonly #sends: SessionSends<Env, Data, In, Out>
  readonly #log: () => SessionLog | undefined
  readonly #shard: ShardSide<Env, Data, In, Out> | undefined

  constructor(parts: {
    table: ConnectionTable<Env, Data, In, Out>
    sends: SessionSends<Env, Data, In, Out>
    log: () => SessionLog | undefined
    shard: ShardSide<Env, Data, In, Out> | undefined
  }) {
    this.#table = parts.table
    this.#sends = parts.sends
    this.#log = parts.log
    this.#shard = parts.shard
  }

  /**
   * `broadcast` (tag null) or `to(tag).send`: how many sockets it reached.
   * In a sharded room the root numbers it first, so that is not known yet: 0.
   */
  send(frame: Frame, tag: string | null, options: BroadcastOptions): number {
    if (this.#shard !== undefined) return this.#shard.publish(frame, tag, options)
    const targets = tag === null ? this.#table.live() : this.#table.tagged(tag)
    return this.#fanOut(targets, this.#sends.outbound(frame, tag, options.except), options)
  }

  /**
   * A message the root numbered, on a leaf: logged at the root's number (so
   * a session's `g` means the same on every leaf), then sent to this leaf's
   * sockets it is for, as a broadcast, `to(tag)` or a send would be.
   */
  deliverOrdered({ seq, target, tag, except, frame, mark }: NumberedMessage): void {
    if (this.#log() !== undefined) this.#sends.append(target, tag, except, frame, mark, seq)
    const outbound = { frame, numbered: () => ({ seq, frame: numbered(seq, frame, mark) }) }
    if (target !== null) {
      const entry = this.#table.get(target)
      if (entry !== undefined) this.#sends.deliverSafely(entry, outbound)
      return
    }
    const targets = tag === null ? this.#table.live() : this.#table.tagged(tag)
    this.#fanOut(targets, outbound, except === null ? {} : { except })
  }

  /** Sends to many; a send that throws costs only its own connection (1011). */
  #fanOut(
    targets: Iterable<Entry<Env, Data, In, Out>>,
    outbound: Outbound,
    { except }: BroadcastOptions,
  ): number {
    let sent = 0
    for (const entry of targets) {
      if (
        except !== undefined &&
        (typeof except === 'number' ? except === entry.id : except.includes(entry.id))
      )
        continue
      if (this.#sends.deliverSafely(entry, outbound)) sent++
    }
    return sent
  }
}
