import { createServer, connect as dial, type AddressInfo, type Server, type Socket } from 'node:net'

/** Quick retries: a run with cuts is about the cuts, not about how long a client waits before it comes back. */
export const CHAOS_RETRY = { reconnect: { initialDelay: 50, maxDelay: 500 } }

/**
 * A TCP proxy on 127.0.0.1 in front of `wrangler dev` that cuts connections
 * without a close frame: both of its sockets are destroyed at once, half the
 * time with a TCP reset, half the time with a FIN. A connection it cannot
 * carry upstream (while wrangler is down) is dropped the same way.
 */
export class ChaosProxy {
  readonly #server: Server
  readonly #pairs = new Set<[Socket, Socket]>()
  /** Every socket not closed yet, pair or not: a half-closed one would keep `close()` waiting. */
  readonly #sockets = new Set<Socket>()
  cuts = 0

  private constructor(server: Server) {
    this.#server = server
  }

  static async start(upstreamPort: number): Promise<ChaosProxy> {
    const server = createServer()
    const proxy = new ChaosProxy(server)
    server.on('connection', (downstream) => proxy.#carry(downstream, upstreamPort))
    await new Promise<void>((listening, failed) => {
      server.once('error', failed)
      server.listen(0, '127.0.0.1', listening)
    })
    return proxy
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port
  }

  #carry(downstream: Socket, upstreamPort: number): void {
    const upstream = dial(upstreamPort, '127.0.0.1')
    const pair: [Socket, Socket] = [downstream, upstream]
    this.#pairs.add(pair)
    // One side ending or failing ends the other: a FIN passes on as a FIN, an error as a reset.
    const follow = (from: Socket, to: Socket): void => {
      this.#sockets.add(from)
      from.on('error', () => {
        this.#pairs.delete(pair)
        if (!to.destroyed) to.resetAndDestroy()
      })
      from.on('close', () => {
        this.#sockets.delete(from)
        this.#pairs.delete(pair)
        to.end()
      })
    }
    follow(downstream, upstream)
    follow(upstream, downstream)
    downstream.pipe(upstream)
    upstream.pipe(downstream)
  }

  /**
   * Cuts one connection picked at random among those the server has
   * answered (a WebSocket, or its 101 on the way); false when there is none.
   * Handshakes cut before any answer come with every restart, when the
   * proxy drops each attempt.
   */
  cut(): boolean {
    const pairs = [...this.#pairs].filter(([, upstream]) => upstream.bytesRead > 0)
    const pair = pairs[Math.floor(Math.random() * pairs.length)]
    if (pair === undefined) return false
    this.#pairs.delete(pair)
    const reset = Math.random() < 0.5
    for (const socket of pair) {
      if (reset) socket.resetAndDestroy()
      else socket.destroy()
    }
    this.cuts += 1
    return true
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
    this.#pairs.clear()
    await new Promise<void>((closed) => this.#server.close(() => closed()))
  }
}
