export { websocket, WebSocketModule } from './module.js'
export { WebSocketObject } from './object/WebSocketObject.js'
export { Connection } from './core/connection.js'
export { CloseCode, MAX_CLOSE_REASON_BYTES } from './core/closeCodes.js'
export { DEFAULT_HEARTBEAT, DEFAULT_MAX_MESSAGE_BYTES } from './core/limits.js'
export { MAX_TAGS, MAX_TAG_LENGTH } from './core/tags.js'
export { DEFAULT_ROOM, MAX_ROOM_NAME_LENGTH, isRoomName, roomNameProblem } from './mount/roomName.js'
export { MAX_ATTACHMENT_BYTES } from './core/attachment.js'
export { json } from './core/serializer.js'
export { DurableWebSocketError, InvalidHandlerError, isDurableWebSocketError } from './core/errors.js'
export { allowOrigins } from './mount/allowOrigins.js'

export type { WebSocketOptions } from './module.js'
export type { EventHandlers, EventName, Incoming, Locals } from './core/events.js'
export type { Manager, BroadcastOptions, ObjectRouter, Outgoing, TaggedGroup } from './core/manager.js'
export type { Heartbeat } from './core/limits.js'
export type { ProtocolFunction, TagsFunction, Validator } from './object/behaviour.js'
export type { Serializer, SerializerOption } from './core/serializer.js'
export type { DurableWebSocketErrorCode } from './core/errors.js'
export type { AllowOriginsOptions } from './mount/allowOrigins.js'
export type {
  MiddlewareContext,
  MiddlewareEntry,
  MiddlewareFactory,
  MiddlewareHandler,
} from './mount/middleware.js'
export type { App, MountedWorker } from './mount/mount.js'
export type { FetchHandler, RoomFunction } from './mount/forward.js'
