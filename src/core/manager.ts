import type { Connection } from './connection.js'
import type { Serializer } from './serializer.js'

export interface BroadcastOptions {
  /** Connection ids that should not receive the message (e.g. the sender). */
  except?: number | readonly number[]
}

/**
 * What a handler reaches through `conn.manager`: one per Durable Object
 * instance (one per room), never shared between objects.
 */
export interface Manager<Env, Data extends object, Message> {
  /** The open connections of this object, keyed by id. */
  connections(): Map<number, Connection<Env, Data, Message>>
  /** Encodes once and sends to every open connection; returns how many were sent to. */
  broadcast(message: Message | ArrayBuffer | ArrayBufferView, options?: BroadcastOptions): number
  /** The object's durable storage, for state that lives next to the sockets. */
  readonly storage: DurableObjectStorage
  /** The object's state (id, storage, waitUntil, alarms). */
  readonly ctx: DurableObjectState
  readonly env: Env
  /** The highest connection id this object has handed out; 0 before the first. */
  readonly lastId: number
  /** The name the object was reached by (`idFromName`), if any. */
  readonly name: string | undefined
  readonly serializer: Serializer<Message> | undefined
}

/** Handles requests that reach the object but are not upgrades; an itty-router router fits. */
export interface ObjectRouter<Env, Data extends object, Message> {
  fetch(
    request: Request,
    manager: Manager<Env, Data, Message>,
  ): Response | undefined | Promise<Response | undefined>
}
