import WebSocket from 'ws'
import { wsText } from '../../tools/wsText.ts'
import { SessionSocket } from './sessionSocket.ts'

const OPEN_TIMEOUT_MS = 30_000
const CLOSE_TIMEOUT_MS = 10_000

/**
 * How a bench client talks: plain WebSocket, the session protocol
 * (bench/lib/sessionSocket.ts), or the session protocol with every frame it
 * sends a request, so each answer is a reply.
 */
export type ClientKind = 'plain' | 'session' | 'request'

/** permessage-deflate is off: workerd would negotiate it, and compressing every frame would measure zlib rather than the servers. */
export const SOCKET_OPTIONS: WebSocket.ClientOptions = {
  perMessageDeflate: false,
  handshakeTimeout: OPEN_TIMEOUT_MS,
}

/**
 * One client socket, open; a session socket once its welcome is in, so a
 * scenario's first message never waits behind the handshake.
 */
export function openSocket(url: string, kind: 'session' | 'request'): Promise<SessionSocket>
export function openSocket(url: string, kind?: ClientKind): Promise<WebSocket>
export async function openSocket(url: string, kind: ClientKind = 'plain'): Promise<WebSocket> {
  if (kind === 'plain') return opened(new WebSocket(url, SOCKET_OPTIONS), url)
  const socket = new SessionSocket(url, SOCKET_OPTIONS, { requests: kind === 'request' })
  await opened(socket, url)
  await welcomed(socket, url)
  return socket
}

/** Resolves once the welcome arrived; rejects if the socket closes first. */
export function welcomed(socket: SessionSocket, url: string): Promise<void> {
  if (socket.welcome !== undefined) return Promise.resolve()
  return new Promise((resolveWelcome, reject) => {
    const onClose = (code: number): void =>
      reject(new Error(`${url}: closed with ${String(code)} before the session's welcome`))
    socket.once('close', onClose)
    void socket.welcomed.then(() => {
      socket.off('close', onClose)
      resolveWelcome()
    })
  })
}

function opened<T extends WebSocket>(socket: T, url: string): Promise<T> {
  return new Promise((resolveOpen, reject) => {
    const onError = (error: Error): void => {
      socket.off('open', onOpen)
      reject(new Error(`${url}: ${error.message}`, { cause: error }))
    }
    const onOpen = (): void => {
      socket.off('error', onError)
      // A late error (a reset at shutdown) must not crash the runner.
      socket.on('error', () => undefined)
      resolveOpen(socket)
    }
    socket.once('open', onOpen)
    socket.once('error', onError)
  })
}

/** Opens `count` sockets, `concurrency` handshakes at a time. */
export async function openMany(
  url: string,
  count: number,
  kind: ClientKind = 'plain',
  concurrency = 50,
): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      sockets.push(await openSocket(url, kind))
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  } catch (error) {
    for (const socket of sockets) socket.terminate()
    throw error
  }
  return sockets
}

/** Resolves once the server's close frame came back (the servers all answer one). */
export function closeSocket(socket: WebSocket): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve()
  return new Promise((resolveClose) => {
    const timer = setTimeout(() => socket.terminate(), CLOSE_TIMEOUT_MS)
    socket.once('close', () => {
      clearTimeout(timer)
      resolveClose()
    })
    if (socket.readyState === WebSocket.OPEN) socket.close(1000)
  })
}

export async function closeAll(sockets: readonly WebSocket[]): Promise<void> {
  await Promise.all(sockets.map(closeSocket))
}

/** Sends `text` and resolves with the next message this socket receives. */
export function request(socket: WebSocket, text: string): Promise<string> {
  return new Promise((resolveReply) => {
    socket.once('message', (data: WebSocket.RawData) => resolveReply(wsText(data)))
    socket.send(text)
  })
}
