export { websocket, WebSocketModule } from './module.js'
export { WebSocketObject } from './object/WebSocketObject.js'
export { Connection } from './core/connection.js'
export { CloseCode, MAX_CLOSE_REASON_BYTES } from './core/closeCodes.js'
export { MAX_ATTACHMENT_BYTES } from './core/attachment.js'
export { json } from './core/serializer.js'
export { DurableWebSocketError, InvalidHandlerError, isDurableWebSocketError } from './core/errors.js'
export { allowOrigins } from './mount/allowOrigins.js'

export type { WebSocketOptions } from './module.js'
export type { EventHandlers, EventName, Incoming, Locals } from './core/events.js'
export type { Manager, BroadcastOptions, ObjectRouter } from './core/manager.js'
export type { Serializer, SerializerOption } from './core/serializer.js'
export type { DurableWebSocketErrorCode } from './core/errors.js'
export type { AllowOriginsOptions } from './mount/allowOrigins.js'
export type {
  MiddlewareContext,
  MiddlewareEntry,
  MiddlewareFactory,
  MiddlewareHandler,
} from './mount/middleware.js'
export type { App } from './mount/mount.js'
export type { FetchHandler } from './mount/forward.js'
