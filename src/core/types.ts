import type { Connection } from '../object/connection.js'
import type { Serializer } from '../shared/serializer.js'
import type { PresenceMember } from '../shared/presenceFrames.js'

export type { PresenceMember }

/** A member's metadata: a plain JSON object, at most `presence.maxMetaBytes` as JSON. */
export type PresenceMeta = Record<string, unknown>

/** Who is in the room (`manager.presence`): one member per key, however many connections it has. */
export interface RoomPresence {
  /** Every member, in the order they joined. */
  list(): PresenceMember[]
  /** The member with this key, if it is in the room. */
  get(key: string): PresenceMember | undefined
  /** How many members the room has. */
  count(): number
}

/** `conn.presence`: the room's presence, and this connection's own member. */
export interface ConnectionPresence extends RoomPresence {
  /** The key this connection's member goes by; undefined once the connection has left. */
  readonly key: string | undefined
  /**
   * Replaces the member's metadata (every connection of the member shares
   * it), and session clients get the change as an update. Throws
   * ERR_DWS_INVALID_PRESENCE_META for a value that is not a plain JSON
   * object and ERR_DWS_PRESENCE_META_TOO_LARGE past `maxMetaBytes`. False
   * when the connection has left the room.
   */
  update(meta: PresenceMeta): boolean
}

/** What `send` and `broadcast` accept: a value for the serializer, or bytes sent as they are. */
export type Outgoing<Out> = Out | ArrayBuffer | ArrayBufferView

export interface TaggedGroup<Out> {
  /** Encodes once and sends to each open connection with the tag; returns how many were sent to. */
  send(message: Outgoing<Out>, options?: BroadcastOptions): number
}

export interface BroadcastOptions {
  /** Connection ids that should not receive the message (e.g. the sender). */
  except?: number | readonly number[]
}

/**
 * What a handler reaches through `conn.manager`: one per Durable Object
 * instance (one per room), never shared between objects.
 */
export interface Manager<Env, Data extends object, In, Out = In> {
  /** The open connections of this object, keyed by id; with a tag, only those carrying it. */
  connections(tag?: string): Map<number, Connection<Env, Data, In, Out>>
  /** Encodes once and sends to every open connection; returns how many were sent to. */
  broadcast(message: Outgoing<Out>, options?: BroadcastOptions): number
  /** The connections carrying `tag`, found by the runtime's tag index rather than a scan. */
  to(tag: string): TaggedGroup<Out>
  /** The open connection with this id, if any. */
  connection(id: number): Connection<Env, Data, In, Out> | undefined
  /** How many connections are open. */
  count(): number
  /** The ids of the open connections, ascending. */
  ids(): number[]
  /**
   * How many connections the whole room has open. In an ordinary room the
   * same as `count()`; in a sharded room `count()` is this leaf's own, and
   * this one asks every leaf.
   */
  roomCount(): Promise<number>
  /** The ids of the whole room's open connections, ascending: `ids()` across every leaf of a sharded room. */
  roomIds(): Promise<number[]>
  /** The object's durable storage, for state that lives next to the sockets. */
  readonly storage: DurableObjectStorage
  /** The object's state (id, storage, waitUntil, alarms). */
  readonly ctx: DurableObjectState
  readonly env: Env
  /** The highest connection id this object has handed out; 0 before the first. */
  readonly lastId: number
  /** The room: the name the object was reached by (`idFromName`), if any. */
  readonly room: string | undefined
  readonly serializer: Serializer<In, Out> | undefined
  /** Who is in the room; throws ERR_DWS_PRESENCE_OFF without the `presence` option. */
  readonly presence: RoomPresence
}

/** Handles requests that reach the object but are not upgrades; an itty-router router fits. */
export interface ObjectRouter<Env, Data extends object, In, Out = In> {
  fetch(
    request: Request,
    manager: Manager<Env, Data, In, Out>,
  ): Response | undefined | Promise<Response | undefined>
}
