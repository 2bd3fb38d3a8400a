/** `sendWindow`: how far a session client may fall behind before live sends to it stop. */
export interface WindowLimits {
  readonly messages: number
  readonly bytes: number
}

/**
 * One session socket's frames sent and not yet acknowledged, oldest first,
 * and where its client stands: the last `g` sent and the last position it
 * was told. Made on first use: a woken object knows only whether the socket
 * was held, and from where.
 */
export class SendWindow {
  /** The highest `g` sent on this socket, live or from the log. */
  sent: number
  /** The highest position the client was sent, by a data frame or a position advance; 0 when unknown. */
  told = 0
  /** Live sends stopped: the client catches up from the log as it acknowledges. */
  held: boolean
  readonly #limits: WindowLimits
  readonly #seqs: number[] = []
  readonly #sizes: number[] = []
  #start = 0
  #bytes = 0

  constructor(sent: number, held: boolean, limits: WindowLimits) {
    this.sent = sent
    this.held = held
    this.#limits = limits
  }

  /** Frames sent and not yet acknowledged. */
  get inFlight(): number {
    return this.#seqs.length - this.#start
  }

  get bytes(): number {
    return this.#bytes
  }

  /** Whether one more frame of `size` fits: always when nothing is in flight, so one large frame cannot stall a client. */
  fits(size: number): boolean {
    return this.fitsBeside(0, 0, size)
  }

  /** Whether it fits beside `count` frames of `bytes` more than are in flight (a replay page being planned). */
  fitsBeside(count: number, bytes: number, size: number): boolean {
    const inFlight = this.inFlight + count
    return (
      inFlight === 0 || (inFlight < this.#limits.messages && this.#bytes + bytes + size <= this.#limits.bytes)
    )
  }

  sentFrame(seq: number, size: number): void {
    this.sent = seq
    this.told = seq
    this.#seqs.push(seq)
    this.#sizes.push(size)
    this.#bytes += size
  }

  /** The client has everything through `last`: it leaves the window. */
  acked(last: number): void {
    while (this.#start < this.#seqs.length && (this.#seqs[this.#start] ?? 0) <= last) {
      this.#bytes -= this.#sizes[this.#start] ?? 0
      this.#start++
    }
    // Under steady traffic acks never cover everything in flight: drop the covered part now and then.
    if (this.#start === this.#seqs.length || (this.#start >= 256 && this.#start * 2 >= this.#seqs.length)) {
      this.#seqs.splice(0, this.#start)
      this.#sizes.splice(0, this.#start)
      this.#start = 0
    }
  }
}
