import type { Frame } from '../shared/serializer.js'
import type { CloseEventInfo } from './closeCodes.js'

/** The part of a WebSocket the client uses; browsers, Node 22 and `ws` all have it. */
export interface Socket {
  readonly readyState: number
  /** The subprotocol the server picked, '' for none; a minimal WebSocket class may lack it. */
  readonly protocol?: string
  binaryType: string
  send(data: Frame): void
  close(code?: number, reason?: string): void
  onopen: (() => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: CloseEventInfo) => void) | null
  onerror: (() => void) | null
}

export const CONNECTING = 0
export const OPEN = 1

/** The bytes of a view, as an ArrayBuffer of their own: what `binary` listeners and `reset` hand out. */
export function copy(view: ArrayBufferView): ArrayBuffer {
  return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer
}
