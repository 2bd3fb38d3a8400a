import type { CloseEventInfo } from './closeCodes.js'
import type { ReconnectOptions } from './options.js'

/**
 * Exponential backoff with full jitter: a delay drawn uniformly from
 * [0, min(maxDelay, initialDelay * 2^step)]. Spreading retries over the whole
 * window keeps clients that lost the same server from coming back in one
 * wave (see "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
 */
export function backoffDelay(
  step: number,
  initialDelay: number,
  maxDelay: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxDelay, initialDelay * 2 ** step)
  return Math.round(random() * ceiling)
}

/** A connection that stayed up this long counts as healthy: the backoff starts over after it drops. */
const STABLE_MS = 5_000

/**
 * When the client tries again: attempts since the last open connection,
 * for `maxAttempts`, and the backoff step, which starts over only after a
 * connection that lasted. Owns the timer of the next attempt.
 */
export class Retries {
  readonly #options: Required<ReconnectOptions> | undefined
  readonly #shouldReconnect: (close: CloseEventInfo) => boolean
  #attempts = 0
  #step = 0
  #openedAt: number | undefined
  #timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    options: Required<ReconnectOptions> | undefined,
    shouldReconnect: (close: CloseEventInfo) => boolean,
  ) {
    this.#options = options
    this.#shouldReconnect = shouldReconnect
  }

  /** The app's `shouldReconnect`; one that throws counts as a no, and its error still surfaces as a listener's would. */
  wanted(close: CloseEventInfo): boolean {
    try {
      return this.#shouldReconnect(close)
    } catch (error) {
      queueMicrotask(() => {
        throw error
      })
      return false
    }
  }

  /** A connection opened: attempts start over. */
  opened(): void {
    this.#attempts = 0
    this.#openedAt = Date.now()
  }

  /** A connection closed: after one that lasted, the backoff starts over too. */
  closed(): void {
    if (this.#openedAt !== undefined && Date.now() - this.#openedAt >= STABLE_MS) this.#step = 0
    this.#openedAt = undefined
  }

  /** Whether the options allow one more attempt. */
  get allowed(): boolean {
    return this.#options !== undefined && this.#attempts < this.#options.maxAttempts
  }

  /**
   * Counts one more attempt and returns its number and delay: jittered
   * backoff, after `hint` ms more when a server shedding load asked for them.
   */
  next(hint: number): { attempt: number; delay: number } {
    const options = this.#options
    if (options === undefined) throw new Error('no reconnect options')
    this.#attempts += 1
    const delay = hint + backoffDelay(this.#step, options.initialDelay, options.maxDelay)
    this.#step += 1
    return { attempt: this.#attempts, delay }
  }

  schedule(attempt: () => void, delay: number): void {
    this.#timer = setTimeout(attempt, delay)
  }

  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
