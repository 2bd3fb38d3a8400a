import { DurableWebSocketError } from './errors.js'

/** workerd refuses attachments whose serialized form is over 16 KiB. */
export const MAX_ATTACHMENT_BYTES = 16_384

/**
 * Library state sits under one key, and the user's `conn.data` one level
 * below it, so nothing a handler stores can overwrite the id or the flags.
 */
export const ATTACHMENT_KEY = 'durable-websocket'

export interface ConnectionRecord<Data> {
  id: number
  data: Data
  /** When the client last sent a message (ms since the epoch); what idle reaping looks at. */
  seen: number
  /** Set before the server sends its close frame, so a late close event after a wake is ignored. */
  closing?: true
}

interface Stored<Data> {
  [ATTACHMENT_KEY]?: ConnectionRecord<Data>
}

export function readRecord<Data>(socket: WebSocket): ConnectionRecord<Data> | undefined {
  const stored = socket.deserializeAttachment() as Stored<Data> | null
  return stored?.[ATTACHMENT_KEY]
}

export function writeRecord<Data>(socket: WebSocket, record: ConnectionRecord<Data>): void {
  const stored: Stored<Data> = { [ATTACHMENT_KEY]: record }
  try {
    socket.serializeAttachment(stored)
  } catch (cause) {
    // The runtime's message for either failure is not a contract; a clone that succeeds means size was the problem.
    const tooLarge = isCloneable(stored)
    throw new DurableWebSocketError(
      tooLarge ? 'ERR_DWS_ATTACHMENT_TOO_LARGE' : 'ERR_DWS_DATA_NOT_STORABLE',
      tooLarge
        ? `conn.data of connection ${String(record.id)} is over the ${String(MAX_ATTACHMENT_BYTES)}-byte attachment limit; the connection keeps its last stored data. Keep bulky state in manager.storage instead.`
        : `conn.data of connection ${String(record.id)} cannot be stored (it must be structured-cloneable: no functions, no class instances with private state); the connection keeps its last stored data.`,
      { cause },
    )
  }
}

function isCloneable(value: unknown): boolean {
  try {
    structuredClone(value)
    return true
  } catch {
    return false
  }
}
