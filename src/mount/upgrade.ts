/** Why a request to the mount path cannot become a WebSocket. */
export type UpgradeProblem = 'method' | 'not-websocket' | 'version' | 'key'

const WEBSOCKET_VERSION = '13'
/** A Sec-WebSocket-Key is 16 random bytes in base64: 22 characters and "==". */
const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/

/**
 * HTTP lets Upgrade list several protocols, but workerd hands a socket back
 * only to a request whose Upgrade is exactly "websocket" (in any case). A list
 * is refused here, before an object accepts a socket the runtime would then
 * drop (test/workerd/handshake.test.ts pins this).
 */
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get('Upgrade')?.trim().toLowerCase() === 'websocket'
}

/**
 * Checks what RFC 6455 §4.2.1 asks of a handshake, in the Worker, so a bad
 * request is answered without waking any Durable Object.
 */
export function findUpgradeProblem(request: Request): UpgradeProblem | undefined {
  if (request.method !== 'GET') return 'method'
  if (!isWebSocketUpgrade(request)) return 'not-websocket'
  const version = request.headers.get('Sec-WebSocket-Version')
  if (version !== null && version.trim() !== WEBSOCKET_VERSION) return 'version'
  const key = request.headers.get('Sec-WebSocket-Key')
  if (key !== null && !KEY_PATTERN.test(key.trim())) return 'key'
  return undefined
}

export function defaultUpgradeError(problem: UpgradeProblem): Response {
  switch (problem) {
    case 'method':
      return new Response('This path only accepts WebSocket upgrades: GET with "Upgrade: websocket".\n', {
        status: 405,
        headers: { Allow: 'GET' },
      })
    case 'not-websocket':
      return new Response('Upgrade Required: connect with a WebSocket client.\n', {
        status: 426,
        headers: { Upgrade: 'websocket', Connection: 'Upgrade' },
      })
    case 'version':
      return new Response('Unsupported WebSocket version: only version 13 is spoken here.\n', {
        status: 426,
        headers: { 'Sec-WebSocket-Version': WEBSOCKET_VERSION },
      })
    case 'key':
      return new Response('Bad Request: Sec-WebSocket-Key must be 16 bytes in base64.\n', { status: 400 })
  }
}
