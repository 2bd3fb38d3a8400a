export type Frame = string | ArrayBuffer | ArrayBufferView

/**
 * Encoded frames waiting for a socket, oldest first. Bounded, so a client
 * that stays offline cannot grow without limit: past `limit`, `push`
 * refuses the new frame and keeps the ones already waiting.
 */
export class Outbox {
  readonly limit: number
  #frames: Frame[] = []

  constructor(limit: number) {
    this.limit = limit
  }

  get size(): number {
    return this.#frames.length
  }

  push(frame: Frame): boolean {
    if (this.#frames.length >= this.limit) return false
    this.#frames.push(frame)
    return true
  }

  shift(): Frame | undefined {
    return this.#frames.shift()
  }

  clear(): void {
    this.#frames = []
  }
}
