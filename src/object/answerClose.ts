import { MAX_CLOSE_REASON_BYTES, isSendableCloseCode, utf8Length } from '../core/closeCodes.js'

/**
 * Sends our close frame back after the peer's. workerd does not do this for
 * hibernatable sockets, not even at compatibility date 2026-10-23
 * (test/workerd/runtime.test.ts pins it), and after a 1006 (no close frame,
 * e.g. a peer that half-closed its TCP connection) closing our end still
 * releases the connection now rather than when the object next hibernates.
 */
export function answerClose(socket: WebSocket, code: number, reason: string): void {
  try {
    // Echo the peer's code where it may be sent back; 1005 (no code) and codes reserved for
    // reporting get an empty close frame, which is always valid. A peer's reason over the
    // control-frame limit cannot be sent back, so the code goes alone.
    if (!isSendableCloseCode(code)) socket.close()
    else if (utf8Length(reason) > MAX_CLOSE_REASON_BYTES) socket.close(code)
    else socket.close(code, reason)
  } catch {
    // Already closed by the runtime: nothing left to answer.
  }
}
