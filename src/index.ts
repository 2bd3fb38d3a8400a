export { websocket, WebSocketModule } from './module.js'
export { WebSocketObject } from './object/WebSocketObject.js'
export { Connection, MAX_ATTACHMENT_BYTES } from './object/connection.js'
export { MAX_TAGS, MAX_TAG_LENGTH } from './object/admission.js'
export { CloseCode, MAX_CLOSE_REASON_BYTES } from './shared/closeCodes.js'
export { DEFAULT_HEARTBEAT, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PRESENCE } from './options.js'
export { DEFAULT_ROOM, MAX_ROOM_NAME_LENGTH, isRoomName, roomNameProblem } from './shared/roomName.js'
export { json } from './shared/serializer.js'
export {
  DurableWebSocketError,
  InvalidHandlerError,
  InvalidMessageError,
  ReplyError,
  isDurableWebSocketError,
} from './core/errors.js'
export { allowOrigins } from './mount/allowOrigins.js'
export { use } from './mount/middleware.js'

export type {
  WebSocketOptions,
  Heartbeat,
  Limits,
  ConnectionKeyFunction,
  ConnectionsPerKey,
  QueueLimit,
  RateLimit,
  PresenceKeyFunction,
  PresenceMetaFunction,
  PresenceOptions,
  ResumeOptions,
  SendWindow,
  ProtocolFunction,
  TagsFunction,
  ValidateOption,
  Validator,
} from './options.js'
export type {
  ClientSends,
  MessageSchemas,
  SchemaInput,
  SchemaOutput,
  ServerIn,
  ServerOut,
  StandardSchemaIssue,
  StandardSchemaProps,
  StandardSchemaResult,
  StandardSchemaV1,
} from './shared/standardSchema.js'
export type { EventHandlers, EventName, Incoming, Locals, MessageInfo } from './core/events.js'
export type {
  Manager,
  BroadcastOptions,
  ConnectionPresence,
  ObjectRouter,
  Outgoing,
  PresenceMember,
  PresenceMeta,
  RoomPresence,
  TaggedGroup,
} from './core/types.js'
export type { Serializer, SerializerOption } from './shared/serializer.js'
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
