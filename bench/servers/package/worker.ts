import { env } from 'cloudflare:workers'
import { AutoRouter } from 'itty-router'
import { WebSocketObject, websocket } from '../../../src/index.js'
import { HEALTH_PATH, broadcastCount, health, instances, type ConnectionData } from '../behaviour.js'

interface Env {
  BENCH: DurableObjectNamespace<Bench>
  /** `on` (from `npm run bench -- --heartbeat`) keeps the package's default ping/pong auto-response. */
  BENCH_HEARTBEAT?: string
}

// The floor and partyserver answer no pings, so by default the package does not either: the same
// job. Its default heartbeat has the runtime match every incoming message against `ping`, which
// `--heartbeat` measures.
const heartbeat = (env as Env).BENCH_HEARTBEAT === 'on' ? { request: 'ping', response: 'pong' } : false
const ws = websocket<Env, ConnectionData>({ binding: 'BENCH', serializer: 'json', heartbeat })

ws.add('open', (conn) => {
  conn.data.joined = Date.now()
})

ws.add('message', (conn, message) => {
  const n = broadcastCount(message)
  if (n === undefined) {
    conn.send({ received: message })
    return
  }
  for (let seq = 0; seq < n; seq++) conn.manager.broadcast({ seq })
})

export class Bench extends WebSocketObject<Env, ConnectionData> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    instances.constructed++
  }
}

const app = AutoRouter()
app.get(HEALTH_PATH, health)

export default ws.mount('/ws', app)
