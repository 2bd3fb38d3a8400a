import type { HandlerRegistry, Locals } from '../core/events.js'
import type { Limits } from '../core/limits.js'
import type { ObjectRouter } from '../core/manager.js'
import type { Serializer } from '../core/serializer.js'

/** Decides the hibernation tags of a connection before its socket is accepted. */
export type TagsFunction = (request: Request, locals: Locals) => string[]

/** Picks one of the subprotocols the client offered, or none. */
export type ProtocolFunction = (offered: string[], request: Request, locals: Locals) => string | undefined

/** Says whether a decoded message has the shape the handlers expect. */
export type Validator = (message: unknown) => boolean

/** The slice of a module that the object runs. */
export interface ObjectBehaviour<Env, Data extends object, Message> {
  readonly handlers: HandlerRegistry<Env, Data, Message>
  readonly serializer: Serializer<Message> | undefined
  readonly objectRouter: ObjectRouter<Env, Data, Message> | undefined
  readonly limits: Limits
  readonly tags: TagsFunction | undefined
  readonly protocol: ProtocolFunction | undefined
  readonly validate: Validator | undefined
}
