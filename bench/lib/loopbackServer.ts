/**
 * The client's ceiling: the bench behaviour (bench/servers/behaviour.ts) in a
 * plain Node `ws` server, run as its own process on loopback. No workerd, no
 * proxy, no storage: if the load client drives this far faster than any
 * workerd server, the client is not what limits the workerd numbers.
 */
import { WebSocketServer, type WebSocket } from 'ws'
import { wsText } from '../../tools/wsText.ts'

const rooms = new Map<string, Set<WebSocket>>()
const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })

function broadcastCount(message: unknown): number | undefined {
  if (typeof message !== 'object' || message === null) return undefined
  const n = (message as { broadcast?: unknown }).broadcast
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= 1_000 ? n : undefined
}

server.on('connection', (socket, request) => {
  const room = request.url ?? '/'
  let members = rooms.get(room)
  if (members === undefined) rooms.set(room, (members = new Set()))
  const peers = members
  peers.add(socket)
  socket.on('close', () => peers.delete(socket))
  socket.on('message', (data, isBinary) => {
    if (isBinary) return
    const message: unknown = JSON.parse(wsText(data))
    const n = broadcastCount(message)
    if (n === undefined) {
      socket.send(JSON.stringify({ received: message }))
      return
    }
    for (let seq = 0; seq < n; seq++) {
      const frame = JSON.stringify({ seq })
      for (const peer of peers) peer.send(frame)
    }
  })
})

server.on('listening', () => {
  const address = server.address()
  if (address !== null && typeof address === 'object') console.log(`listening on ${String(address.port)}`)
})
