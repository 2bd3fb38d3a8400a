/**
 * Where a connection is in its life. One value, moved only by {@link move},
 * so every event path asks the same question the same way.
 *
 * - `opening`: accepted; `open` is queued or running, and nothing is stored
 *   yet (the record is written once, when `open` returns).
 * - `open`: stored; messages are handled.
 * - `closedByServer`: the server sent its close frame (`conn.close()`, a
 *   failed handler, a limit); `close` is queued. Messages still queued are
 *   dropped, and the client's answering close, even after a wake, is only
 *   answered. Stored, so a rebuilt object knows it too.
 * - `draining`: the server sent its close frame because the client went past
 *   a limit on what it may send (`maxQueued`, `rateLimit`). Nothing new is
 *   taken, but what was already queued is still handled, then `close`
 *   runs. Stored like `closedByServer`.
 * - `closedByPeer`: the client's close frame, or the connection's loss,
 *   arrived; `close` is queued behind the messages that came before it,
 *   which are still handled.
 * - `suspended`: a session's socket was lost without a final close; the
 *   session waits in storage for a resume, and `close` does not run. Messages
 *   that came before the loss are still handled; what they send is logged
 *   for the resume. When the window ends (`expire`), it moves to
 *   `closedByPeer` and `close` runs. A close event that still comes for the
 *   lost socket (after an error, or the peer answering our close frame) moves
 *   nothing: only a resume or the window's end decides the session's fate.
 * - `replaced`: the session went on on another socket (a resume, or a
 *   takeover of a socket that still looked open). Nothing more runs here:
 *   what was still queued, the client sends again on the new socket.
 */
export type ConnectionState =
  'opening' | 'open' | 'closedByServer' | 'draining' | 'closedByPeer' | 'suspended' | 'replaced'

export type LifecycleEvent =
  'stored' | 'serverClose' | 'drain' | 'peerClose' | 'suspend' | 'replace' | 'expire'

const ENDINGS = {
  serverClose: 'closedByServer',
  drain: 'draining',
  peerClose: 'closedByPeer',
  suspend: 'suspended',
  replace: 'replaced',
} as const

const MOVES: Readonly<Record<ConnectionState, Partial<Record<LifecycleEvent, ConnectionState>>>> = {
  opening: { stored: 'open', ...ENDINGS },
  open: ENDINGS,
  suspended: { replace: 'replaced', expire: 'closedByPeer' },
  closedByServer: {},
  draining: {},
  closedByPeer: {},
  replaced: {},
}

/** The state after `event`, or undefined when the event means nothing in `state` (e.g. a second close). */
export function move(state: ConnectionState, event: LifecycleEvent): ConnectionState | undefined {
  return MOVES[state][event]
}

/** True until either side has closed: the connection is in `connections()` and takes new messages. */
export function isLive(state: ConnectionState): boolean {
  return state === 'opening' || state === 'open'
}

/**
 * Whether a message that was queued while the connection was live is still
 * handled now: yes unless the server closed it, or its session went on elsewhere.
 */
export function handlesQueued(state: ConnectionState): boolean {
  return state !== 'closedByServer' && state !== 'replaced'
}

/** The server sent its close frame: a rebuilt object must only answer the client's. */
export function closedByServer(state: ConnectionState): boolean {
  return state === 'closedByServer' || state === 'draining'
}
