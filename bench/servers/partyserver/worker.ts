import { Server, routePartykitRequest, type Connection, type WSMessage } from 'partyserver'
import {
  HEALTH_PATH,
  broadcastCopy,
  broadcastCount,
  broadcastPadding,
  health,
  instances,
  type ConnectionData,
} from '../behaviour.js'

interface Env {
  BENCH: DurableObjectNamespace<Bench>
}

interface State extends ConnectionData {
  id: number
}

const LAST_ID_KEY = 'last-id'

/**
 * partyserver as its README shows it: a Server subclass with hibernation on,
 * reached through routePartykitRequest at /parties/bench/<room>. Its own
 * connection ids are random strings, so the durable integer id lives in the
 * connection's state, next to the per-connection data.
 */
export class Bench extends Server<Env> {
  static override options = { hibernate: true }

  #lastId: number | undefined

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    instances.constructed++
  }

  override onConnect(connection: Connection<State>): void {
    const id = (this.#lastId ?? this.ctx.storage.kv.get<number>(LAST_ID_KEY) ?? 0) + 1
    this.ctx.storage.kv.put(LAST_ID_KEY, id)
    this.#lastId = id
    connection.setState({ id, joined: Date.now() })
  }

  override onMessage(connection: Connection<State>, raw: WSMessage): void {
    if (typeof raw !== 'string') return
    let message: unknown
    try {
      message = JSON.parse(raw)
    } catch {
      connection.close(1007, 'Malformed message')
      return
    }
    const n = broadcastCount(message)
    if (n === undefined) {
      connection.send(JSON.stringify({ received: message }))
      return
    }
    const pad = broadcastPadding(message)
    for (let seq = 0; seq < n; seq++) this.broadcast(JSON.stringify(broadcastCopy(seq, pad)))
  }
}

export default {
  async fetch(request, env): Promise<Response> {
    if (new URL(request.url).pathname === HEALTH_PATH) return health()
    return (await routePartykitRequest(request, env)) ?? new Response('Not Found\n', { status: 404 })
  },
} satisfies ExportedHandler<Env>
