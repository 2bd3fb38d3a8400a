import type { Serializer } from '../shared/serializer.js'
import { ClientError } from './ClientError.js'
import type { CloseEventInfo } from './closeCodes.js'
import type { Emitter } from './Emitter.js'
import type { PresenceChange } from './Presence.js'

export interface OpenInfo {
  /** True for every connection after the first. */
  reconnected: boolean
  /**
   * True when the server took this connection back into the session it had
   * before: same `client.id`, and every message it missed follows. False for
   * a new session, and always in plain mode.
   */
  resumed: boolean
}

export interface ResetInfo {
  /**
   * What the client had sent or queued that the old session never
   * confirmed, oldest first, as the serializer encoded it (text) or as
   * bytes. The server may or may not have handled the ones it had sent; the
   * client sends none of them again.
   */
  unacknowledged: (string | ArrayBuffer)[]
}

export interface CloseInfo extends CloseEventInfo {
  /** Whether a retry is scheduled; false after `close()` and when the client gives up. */
  willReconnect: boolean
}

export interface ReconnectInfo {
  /** 1 for the first retry since the last open connection. */
  attempt: number
  /** How long the client waits before it, in ms. */
  delay: number
}

export interface ClientEvents<Incoming> {
  /** A connection opened. Messages queued meanwhile go out right after these listeners return. */
  open: (info: OpenInfo) => void
  /**
   * The server could not resume the session (too late, or it lost track)
   * and started a new one: state the app built from earlier messages may
   * have gaps, so refetch it. Comes right before `open` with `resumed: false`.
   */
  reset: (info: ResetInfo) => void
  /** One text frame, decoded by the serializer. */
  message: (message: Incoming) => void
  /** One binary frame, as it came. */
  binary: (data: ArrayBuffer) => void
  /** A connection ended (or an attempt failed); `willReconnect` tells whether another follows. */
  close: (info: CloseInfo) => void
  /** A retry is scheduled. */
  reconnecting: (info: ReconnectInfo) => void
  /** A frame the serializer could not decode (it is dropped), or an error the socket reported. */
  error: (error: ClientError) => void
  /**
   * The room's members changed (the server's `presence` option): who
   * joined, whose metadata or number of connections changed, who left.
   * `client.presence` already shows the change.
   */
  presence: (change: PresenceChange) => void
}

export type ClientEventName = keyof ClientEvents<unknown>

export const EVENT_NAMES: readonly ClientEventName[] = [
  'open',
  'reset',
  'message',
  'binary',
  'close',
  'reconnecting',
  'error',
  'presence',
]

/**
 * Hands one payload from the server to the app: text decoded for `message`
 * (text that does not decode is reported as an `error` and dropped), bytes to `binary`.
 */
export function deliver<Incoming>(
  events: Emitter<ClientEvents<Incoming>>,
  serializer: Serializer<Incoming, unknown>,
  data: unknown,
): void {
  if (typeof data === 'string') {
    let message: Incoming
    try {
      message = serializer.decode(data)
    } catch (cause) {
      const why = 'A text frame from the server could not be decoded; it was dropped.'
      events.emit('error', new ClientError('ERR_DWS_MALFORMED_MESSAGE', why, { cause }))
      return
    }
    events.emit('message', message)
  } else if (data instanceof ArrayBuffer) {
    events.emit('binary', data)
  }
}
