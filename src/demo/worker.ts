import { AutoRouter, text } from 'itty-router'
import { WebSocketObject, isRoomName, websocket } from '../index.js'
import { chatPage, clientScript } from './chat/assets.js'
import { ChatRoom, chat } from './chat/chat.js'

// Kelp::Module::WebSocket::AnyEvent's SYNOPSIS, on Workers: a JSON endpoint at /ws (and a room per /ws/<name>) that answers every message.
const ws = websocket({ binding: 'WEBSOCKET', serializer: 'json' })
ws.add('message', (conn, message) => conn.send({ received: message }))

export class Hub extends WebSocketObject {
  // This script makes two modules (the echo and the chat), so each object class names its own.
  static override websocket = ws

  /** An RPC method beside the sockets: what the object knows of its connections. */
  connectionStatus(): { ids: number[]; lastId: number } {
    return { ids: this.manager.ids(), lastId: this.manager.lastId }
  }
}

export { ChatRoom }

const app = AutoRouter()
app.get('/', chatPage)
app.get('/chat/client.js', clientScript)
app.get('/hello', () => text('hi\n'))
app.get('/connections', (_request, env: Env) => ws.room<Hub>(env).connectionStatus())
app.get('/connections/:room', ({ params }, env: Env) =>
  // Checked here: thrown by ws.room(), the error would reach the router, which answers with its text.
  isRoomName(params.room)
    ? ws.room<Hub>(env, params.room).connectionStatus()
    : text('Bad Request: not a room name.\n', { status: 400 }),
)

interface Env {
  WEBSOCKET: DurableObjectNamespace<Hub>
  CHAT: DurableObjectNamespace<ChatRoom>
}

// Two mounts side by side: the echo at /ws, the chat at /chat/ws, each with its own binding and
// object class; every other path reaches the app.
export default ws.mount('/ws', chat.mount('/chat/ws', app))
