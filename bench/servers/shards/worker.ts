import { env } from 'cloudflare:workers'
import { AutoRouter, type IRequest } from 'itty-router'
import { WebSocketObject, websocket, type Connection, type WebSocketModule } from '../../../src/index.js'
import type { ShardStats } from '../../../src/object/shard/stats.js'
import {
  HEALTH_PATH,
  broadcastCopy,
  broadcastCount,
  broadcastPadding,
  health,
  instances,
  type ConnectionData,
} from '../behaviour.js'

/**
 * The same room twice, for `npm run bench -- --shards`: `/ws/<room>` is an
 * ordinary room (one object), `/shards/<room>` the same handlers spread over
 * {@link LEAVES} leaves and a root (docs/sharding.md). Both answer the bench's
 * usual messages (bench/servers/behaviour.ts); the Worker adds what the
 * runner reads and drives over RPC: each part's call counters, and a stream
 * of RPC broadcasts sent as fast as the root takes them.
 */

interface Env {
  BENCH: DurableObjectNamespace<Bench>
  BENCH_SHARDS: DurableObjectNamespace<BenchShards>
  /** Sockets one leaf takes before placement moves on (`shards.socketsPerShard`): the runner's N / 4. */
  BENCH_SHARD_SOCKETS?: string
}

const LEAVES = 4
/** A bound on one RPC stream, so a typo in the runner cannot keep the root busy for minutes. */
const MAX_STREAM = 20_000
const MAX_IN_FLIGHT = 256

const socketsPerShard = Number((env as Env).BENCH_SHARD_SOCKETS ?? '100')

// Defaults for everything else (sessions resume, the log's bounds), the same in both; no heartbeat,
// as in the package's other bench server.
const ordinary = websocket<Env, ConnectionData>({ binding: 'BENCH', serializer: 'json', heartbeat: false })
const sharded = websocket<Env, ConnectionData>({
  binding: 'BENCH_SHARDS',
  serializer: 'json',
  heartbeat: false,
  shards: { count: LEAVES, socketsPerShard },
})

function onMessage(conn: Connection<Env, ConnectionData>, message: unknown): void {
  const n = broadcastCount(message)
  if (n === undefined) {
    conn.send({ received: message })
    return
  }
  const pad = broadcastPadding(message)
  for (let seq = 0; seq < n; seq++) conn.manager.broadcast(broadcastCopy(seq, pad))
}

for (const module of [ordinary, sharded] as WebSocketModule<Env, ConnectionData>[]) {
  module.add('open', (conn) => {
    conn.data.joined = Date.now()
  })
  module.add('message', onMessage)
  module.add('request', (_conn, message) => ({ received: message }))
}

export class Bench extends WebSocketObject<Env, ConnectionData> {
  static override websocket = ordinary
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    instances.constructed++
  }
}

export class BenchShards extends WebSocketObject<Env, ConnectionData> {
  static override websocket = sharded
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    instances.constructed++
  }
}

/** What `GET /stats/<room>` answers (bench/lib/shards.ts reads it): the root's counters and each leaf's, in leaf order. */
interface RoomStats {
  root: ShardStats
  leaves: ShardStats[]
}

/**
 * `count` RPC broadcasts `{ seq }` to one object, `inFlight` at a time: the
 * root of a sharded room numbers each and returns, an ordinary room sends
 * each to its sockets before it returns.
 */
async function stream(
  stub: DurableObjectStub<Bench> | DurableObjectStub<BenchShards>,
  count: number,
  inFlight: number,
): Promise<void> {
  let next = 0
  const caller = async (): Promise<void> => {
    while (next < count) {
      const seq = next++
      await stub.broadcast({ seq })
    }
  }
  await Promise.all(Array.from({ length: inFlight }, caller))
}

const app = AutoRouter<IRequest, [Env, ExecutionContext]>()
app.get(HEALTH_PATH, () => health({ leaves: LEAVES, socketsPerShard }))
app.get('/stats/:room', async (request, env): Promise<RoomStats> => {
  const room = request.params.room ?? ''
  const root = await env.BENCH_SHARDS.getByName(room).shardStats()
  const leaves = await Promise.all(
    Array.from({ length: LEAVES }, (_, n) => env.BENCH_SHARDS.getByName(`${room}#${String(n)}`).shardStats()),
  )
  return { root, leaves }
})
app.post('/stream/:kind/:room', async (request, env) => {
  const url = new URL(request.url)
  const count = Math.min(MAX_STREAM, Number(url.searchParams.get('count') ?? '0'))
  const inFlight = Math.min(MAX_IN_FLIGHT, Math.max(1, Number(url.searchParams.get('inFlight') ?? '1')))
  const room = request.params.room ?? ''
  const namespace = request.params.kind === 'sharded' ? env.BENCH_SHARDS : env.BENCH
  await stream(namespace.getByName(room), count, inFlight)
  return { count }
})

export default ordinary.mount('/ws', sharded.mount('/shards', app))
