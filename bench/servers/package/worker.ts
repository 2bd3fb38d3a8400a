import { env } from 'cloudflare:workers'
import { AutoRouter } from 'itty-router'
import { WebSocketObject, websocket, type Connection } from '../../../src/index.js'
import {
  HEALTH_PATH,
  broadcastCopy,
  broadcastCount,
  broadcastPadding,
  health,
  instances,
  type ConnectionData,
} from '../behaviour.js'
import { RATE_LIMIT_VAR, formatRateLimit, parseRateLimit, type RateLimit } from '../rateLimit.js'

interface Env {
  BENCH: DurableObjectNamespace<Bench>
  /** `on` (from `npm run bench -- --heartbeat`) keeps the package's default ping/pong auto-response. */
  BENCH_HEARTBEAT?: string
  /**
   * `on` (from `npm run bench -- --presence`) turns presence on: one member per `?member=` of the
   * upgrade, and `{ "presence": meta }` from a client updates its member's metadata.
   */
  BENCH_PRESENCE?: string
  /** `<messages>/<seconds>` (from the abuse section): the per-connection rate limit to apply. */
  [RATE_LIMIT_VAR]?: string
}

// The floor and partyserver answer no pings, so by default the package does not either: the same
// job. Its default heartbeat has the runtime match every incoming message against `ping`, which
// `--heartbeat` measures.
const heartbeat = (env as Env).BENCH_HEARTBEAT === 'on' ? { request: 'ping', response: 'pong' } : false
const presenceOn = (env as Env).BENCH_PRESENCE === 'on'
const requested = parseRateLimit((env as Env)[RATE_LIMIT_VAR])
// The abuse section asks for a limit through the var; /health reports the one applied.
const applied: { rateLimit?: RateLimit } = requested === undefined ? {} : { rateLimit: requested }
const ws = websocket<Env, ConnectionData>({
  binding: 'BENCH',
  serializer: 'json',
  heartbeat,
  ...(applied.rateLimit === undefined
    ? {}
    : { rateLimit: { messages: applied.rateLimit.messages, per: applied.rateLimit.perSeconds * 1000 } }),
  ...(presenceOn
    ? { presence: { key: (request: Request) => new URL(request.url).searchParams.get('member') ?? 'anon' } }
    : {}),
})

ws.add('open', (conn) => {
  conn.data.joined = Date.now()
})

/** What every section measures: an echo, or the broadcast a trigger asks for. */
function onMessage(conn: Connection<Env, ConnectionData>, message: unknown): void {
  const n = broadcastCount(message)
  if (n === undefined) {
    conn.send({ received: message })
    return
  }
  const pad = broadcastPadding(message)
  for (let seq = 0; seq < n; seq++) conn.manager.broadcast(broadcastCopy(seq, pad))
}

// Without BENCH_PRESENCE the handler is the one every other section measures, untouched.
ws.add(
  'message',
  presenceOn
    ? (conn, message) => {
        const meta = presenceMeta(message)
        if (meta === undefined) onMessage(conn, message)
        else conn.presence.update(meta)
      }
    : onMessage,
)

/** The metadata of a `{ "presence": { … } }` message, else undefined. */
function presenceMeta(message: unknown): Record<string, unknown> | undefined {
  if (typeof message !== 'object' || message === null) return undefined
  const meta = (message as { presence?: unknown }).presence
  return typeof meta === 'object' && meta !== null && !Array.isArray(meta)
    ? (meta as Record<string, unknown>)
    : undefined
}

// The request/reply contender's echo: the same answer, as a reply.
ws.add('request', (_conn, message) => ({ received: message }))

export class Bench extends WebSocketObject<Env, ConnectionData> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    instances.constructed++
  }
}

const app = AutoRouter()
// The rate limit asked for and the one applied, so the runner never reports a limit that is not there.
app.get(HEALTH_PATH, () =>
  health({
    rateLimitRequested: requested === undefined ? null : formatRateLimit(requested),
    rateLimitApplied: applied.rateLimit === undefined ? null : formatRateLimit(applied.rateLimit),
  }),
)

export default ws.mount('/ws', app)
