export { connect } from './connect.js'
export { Client } from './Client.js'
export { ClientError, isClientError } from './ClientError.js'
export { RequestError } from './Requests.js'
export { json } from '../shared/serializer.js'
export { DEFAULT_INITIAL_DELAY, DEFAULT_MAX_DELAY, DEFAULT_MAX_QUEUED } from './options.js'
export { DEFAULT_REQUEST_TIMEOUT } from './Requests.js'

export type { ClientState } from './Client.js'
export type { ClientFor } from './connect.js'
export type { RequestErrorCode, RequestOptions } from './Requests.js'
export type {
  ClientEventName,
  ClientEvents,
  CloseInfo,
  OpenInfo,
  ReconnectInfo,
  ResetInfo,
} from './events.js'
export type { ClientErrorCode } from './ClientError.js'
export type { PresenceChange } from './Presence.js'
export type { PresenceMember } from '../shared/presenceFrames.js'
export type { CloseEventInfo } from './closeCodes.js'
export type { ClientOptions, HeartbeatOptions, ReconnectOptions, WebSocketConstructor } from './options.js'
export type { Protocols, ProtocolsOption } from './protocols.js'
export type { Serializer, SerializerOption } from '../shared/serializer.js'
export type { SessionStore } from './StoredSession.js'
export type {
  ClientSends,
  MessageSchemas,
  SchemaInput,
  SchemaOutput,
  ServerOut,
  StandardSchemaV1,
} from '../shared/standardSchema.js'
export type { ConnectTarget } from './target.js'
