import { AutoRouter, text } from 'itty-router'
import { WebSocketObject, websocket } from 'durable-websocket'

// At module scope, so the Durable Object below, which runs in the same script, finds the handlers.
const ws = websocket({ binding: 'WEBSOCKET', serializer: 'json' })

ws.add('message', (conn, message) => {
  conn.send({ received: message })
})

// The Durable Object that holds the sockets; wrangler.jsonc binds it as WEBSOCKET.
export class Hub extends WebSocketObject {}

const app = AutoRouter()
app.get('/', () => text('Connect a WebSocket client to /ws\n'))

// /ws and /ws/<room> go to the object, every other request to the app.
export default ws.mount('/ws', app)
