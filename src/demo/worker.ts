import { AutoRouter } from 'itty-router'
import { WebSocketObject, websocket } from '../index.js'

// The seed's SYNOPSIS, on Workers: a JSON endpoint at /ws that answers every message.
const ws = websocket({ binding: 'WEBSOCKET', serializer: 'json' })
ws.add('message', (conn, message) => conn.send({ received: message }))

const app = AutoRouter()
app.get('/', () => 'durable-websocket demo: connect a WebSocket client to /ws\n')
app.get('/hello', () => 'hi\n')

export class Hub extends WebSocketObject {}

export default ws.mount('/ws', app)
