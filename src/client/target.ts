import { describe } from '../shared/describe.js'
import { roomNameProblem } from '../shared/roomName.js'
import { ClientError } from './ClientError.js'

/** A mount path and a room: `{ url: '/chat/ws', room: 'lobby' }` connects to `/chat/ws/lobby`. */
export interface ConnectTarget {
  /** The mount's URL: `ws:`, `wss:`, `http:` or `https:`, or a path relative to the page in a browser. */
  url: string | URL
  /** The room (one Durable Object per room). Default: the mount's own room, "default". */
  room?: string
}

function invalid(message: string): ClientError {
  return new ClientError('ERR_DWS_INVALID_OPTIONS', message)
}

/**
 * The server's own rule, checked here so a bad name fails at `connect()`
 * instead of as an endless series of refused handshakes, which a browser
 * reports only as code 1006.
 */
function checkRoom(room: unknown): string {
  const problem = roomNameProblem(room)
  if (problem === undefined) return room as string
  throw invalid(`connect() was given a room that the server would refuse: ${problem}.`)
}

/** The page's address, when there is a page: what a relative URL is resolved against. */
function pageAddress(): string | undefined {
  const location = (globalThis as { location?: { href?: unknown } }).location
  return typeof location?.href === 'string' ? location.href : undefined
}

/** Turns what `connect()` was given into the `ws:` or `wss:` URL a WebSocket opens. */
export function resolveUrl(target: string | URL | ConnectTarget): string {
  const { url, room } =
    typeof target === 'string' || target instanceof URL
      ? { url: target, room: undefined }
      : typeof target === 'object' && (target as unknown) !== null
        ? target
        : { url: undefined, room: undefined }
  if (typeof url !== 'string' && !(url instanceof URL)) {
    throw invalid(`connect() takes a URL or { url, room }, got ${describe(target)}.`)
  }
  let resolved: URL
  try {
    resolved = new URL(url, pageAddress())
  } catch {
    throw invalid(
      `"${String(url)}" is not a URL${pageAddress() === undefined ? '; outside a browser give a full one, e.g. "ws://127.0.0.1:8787/ws"' : ''}.`,
    )
  }
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:'
  else if (resolved.protocol === 'https:') resolved.protocol = 'wss:'
  else if (resolved.protocol !== 'ws:' && resolved.protocol !== 'wss:') {
    throw invalid(`"${String(url)}" must be a ws:, wss:, http: or https: URL.`)
  }
  // A WebSocket URL may not carry a fragment: the constructor throws on one.
  resolved.hash = ''
  if (room !== undefined) resolved.pathname = `${resolved.pathname.replace(/\/+$/, '')}/${checkRoom(room)}`
  return resolved.href
}
