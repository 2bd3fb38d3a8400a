import type { Connection } from './connection.js'
import type { Serializer } from './serializer.js'

/** What `send` and `broadcast` accept: a value for the serializer, or bytes sent as they are. */
export type Outgoing<Message> = Message | ArrayBuffer | ArrayBufferView

export interface TaggedGroup<Message> {
  /** Encodes once and sends to each open connection with the tag; returns how many were sent to. */
  send(message: Outgoing<Message>, options?: BroadcastOptions): number
}

export interface BroadcastOptions {
  /** Connection ids that should not receive the message (e.g. the sender). */
  except?: number | readonly number[]
}

/**
 * What a handler reaches through `conn.manager`: one per Durable Object
 * instance (one per room), never shared between objects.
 */
export interface Manager<Env, Data extends object, Message> {
  /** The open connections of this object, keyed by id; with a tag, only those carrying it. */
  connections(tag?: string): Map<number, Connection<Env, Data, Message>>
  /** Encodes once and sends to every open connection; returns how many were sent to. */
  broadcast(message: Outgoing<Message>, options?: BroadcastOptions): number
  /** The connections carrying `tag`, found by the runtime's tag index rather than a scan. */
  to(tag: string): TaggedGroup<Message>
  /** The open connection with this id, if any. */
  connection(id: number): Connection<Env, Data, Message> | undefined
  /** How many connections are open. */
  count(): number
  /** The ids of the open connections, ascending. */
  ids(): number[]
  /** The object's durable storage, for state that lives next to the sockets. */
  readonly storage: DurableObjectStorage
  /** The object's state (id, storage, waitUntil, alarms). */
  readonly ctx: DurableObjectState
  readonly env: Env
  /** The highest connection id this object has handed out; 0 before the first. */
  readonly lastId: number
  /** The room: the name the object was reached by (`idFromName`), if any. */
  readonly room: string | undefined
  readonly serializer: Serializer<Message> | undefined
}

/** Handles requests that reach the object but are not upgrades; an itty-router router fits. */
export interface ObjectRouter<Env, Data extends object, Message> {
  fetch(
    request: Request,
    manager: Manager<Env, Data, Message>,
  ): Response | undefined | Promise<Response | undefined>
}
