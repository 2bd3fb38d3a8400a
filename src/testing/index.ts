export { openSocket } from './openSocket.js'
export { TestSocket } from './TestSocket.js'
export { HandshakeError } from './HandshakeError.js'

export type { Fetchable, OpenSocketOptions } from './openSocket.js'
export type { SocketClose, WaitOptions } from './TestSocket.js'
