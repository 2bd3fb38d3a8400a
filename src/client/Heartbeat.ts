import type { ResolvedHeartbeat } from './options.js'

/**
 * Pings an open connection every `interval` ms. The server's runtime answers
 * without waking its Durable Object, so this keeps proxies from closing an
 * idle connection at no cost. It also finds connections that died without
 * a close (a laptop that slept, a dropped network): when nothing at all
 * arrives within `timeout` of a ping, `onTimeout` runs.
 */
export class Heartbeat {
  readonly #options: ResolvedHeartbeat
  readonly #ping: (text: string) => void
  readonly #onTimeout: () => void
  #interval: ReturnType<typeof setInterval> | undefined
  #deadline: ReturnType<typeof setTimeout> | undefined

  constructor(options: ResolvedHeartbeat, ping: (text: string) => void, onTimeout: () => void) {
    this.#options = options
    this.#ping = ping
    this.#onTimeout = onTimeout
  }

  start(): void {
    this.stop()
    this.#interval = setInterval(() => {
      this.#ping(this.#options.request)
      this.#deadline ??= setTimeout(() => {
        this.stop()
        this.#onTimeout()
      }, this.#options.timeout)
    }, this.#options.interval)
  }

  /** Any frame from the server proves the connection is alive. */
  received(): void {
    if (this.#deadline !== undefined) clearTimeout(this.#deadline)
    this.#deadline = undefined
  }

  stop(): void {
    if (this.#interval !== undefined) clearInterval(this.#interval)
    this.received()
    this.#interval = undefined
  }
}
