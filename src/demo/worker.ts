import { AutoRouter, text } from 'itty-router'
import { WebSocketObject, websocket } from '../index.js'

// The seed's SYNOPSIS, on Workers: a JSON endpoint at /ws (and a room per /ws/<name>) that answers every message.
const ws = websocket({ binding: 'WEBSOCKET', serializer: 'json' })
ws.add('message', (conn, message) => conn.send({ received: message }))

export class Hub extends WebSocketObject {
  /** An RPC method beside the sockets: what the object knows of its connections. */
  connectionStatus(): { ids: number[]; lastId: number } {
    const ids = [...this.manager.connections().keys()].sort((a, b) => a - b)
    return { ids, lastId: this.manager.lastId }
  }
}

const app = AutoRouter()
app.get('/', () => text('durable-websocket demo: connect a WebSocket client to /ws\n'))
app.get('/hello', () => text('hi\n'))
app.get('/connections', (_request, env: Env) => ws.room<Hub>(env).connectionStatus())
app.get('/connections/:room', ({ params }, env: Env) => ws.room<Hub>(env, params.room).connectionStatus())

interface Env {
  WEBSOCKET: DurableObjectNamespace<Hub>
}

export default ws.mount('/ws', app)
