import { DurableObject } from 'cloudflare:workers'
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
  /**
   * `on` (from the sessions section): every message the object sends is also
   * written to SQLite, one row per echo and one per broadcast, the least a
   * durable log costs. Off, nothing is written per message.
   */
  BENCH_DURABLE?: string
}

interface Attachment extends ConnectionData {
  id: number
}

const LAST_ID_KEY = 'last-id'
const ROOM_PATH = /^\/ws\/([A-Za-z0-9_-]{1,64})$/
const RESTART_PATH = /^\/rooms\/([A-Za-z0-9_-]{1,64})\/restart$/

/**
 * The floor: what a careful hand-written object on the Hibernation API does
 * for the same job, and nothing more.
 */
export class Bench extends DurableObject<Env> {
  #lastId: number | undefined
  readonly #durable: boolean

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    instances.constructed++
    this.#durable = env.BENCH_DURABLE === 'on'
    if (this.#durable)
      ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS sent (seq INTEGER PRIMARY KEY, frame TEXT)')
  }

  override fetch(request: Request): Response {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('Upgrade Required\n', { status: 426 })
    }
    const id = (this.#lastId ?? this.ctx.storage.kv.get<number>(LAST_ID_KEY) ?? 0) + 1
    this.ctx.storage.kv.put(LAST_ID_KEY, id)
    this.#lastId = id
    const pair = new WebSocketPair()
    const server = pair[1]
    this.ctx.acceptWebSocket(server)
    server.serializeAttachment({ id, joined: Date.now() } satisfies Attachment)
    return new Response(null, { status: 101, webSocket: pair[0] })
  }

  override webSocketMessage(socket: WebSocket, raw: string | ArrayBuffer): void {
    if (typeof raw !== 'string') return
    let message: unknown
    try {
      message = JSON.parse(raw)
    } catch {
      socket.close(1007, 'Malformed message')
      return
    }
    const n = broadcastCount(message)
    if (n === undefined) {
      const reply = JSON.stringify({ received: message })
      if (this.#durable) this.#keep(reply)
      socket.send(reply)
      return
    }
    const pad = broadcastPadding(message)
    for (let seq = 0; seq < n; seq++) {
      const frame = JSON.stringify(broadcastCopy(seq, pad))
      if (this.#durable) this.#keep(frame)
      for (const peer of this.ctx.getWebSockets()) {
        try {
          peer.send(frame)
        } catch {
          // A socket closing under us; the rest still get the message.
        }
      }
    }
  }

  /** One row per message sent: the durable floor's only addition. */
  #keep(frame: string): void {
    this.ctx.storage.sql.exec('INSERT INTO sent (frame) VALUES (?)', frame)
  }

  /**
   * RPC: what a deploy does to the object (the storm section): every socket
   * drops, memory goes, storage stays. The call ends in the reset's error.
   */
  restart(): void {
    this.ctx.abort('restarted, as a deploy restarts an object')
  }

  override webSocketClose(socket: WebSocket, code: number, reason: string): void {
    // workerd does not answer a close frame on a hibernatable socket itself.
    try {
      socket.close(code, reason)
    } catch {
      // 1005/1006 cannot be sent back, or the socket is already gone.
    }
  }
}

export default {
  async fetch(request, env): Promise<Response> {
    const { pathname } = new URL(request.url)
    if (pathname === HEALTH_PATH) return health()
    const restart = RESTART_PATH.exec(pathname)?.[1]
    if (restart !== undefined && request.method === 'POST') {
      try {
        await env.BENCH.get(env.BENCH.idFromName(restart)).restart()
      } catch {
        // The reset throws into the call that asked for it: that is the restart done.
      }
      return new Response(null, { status: 204 })
    }
    const room = ROOM_PATH.exec(pathname)?.[1]
    if (room === undefined) return new Response('Not Found\n', { status: 404 })
    return env.BENCH.get(env.BENCH.idFromName(room)).fetch(request)
  },
} satisfies ExportedHandler<Env>
