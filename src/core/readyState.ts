/**
 * WebSocket ready states, fixed by the WHATWG spec. Kept as plain numbers:
 * reading `WebSocket.OPEN` goes through the runtime's global scope on every
 * message, which a profile of the echo path showed as a visible cost.
 */
export const OPEN = 1
export const CLOSED = 3
