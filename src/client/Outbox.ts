import type { Frame } from '../shared/serializer.js'

/**
 * Encoded frames waiting for a socket, oldest first. Bounded, so a client
 * that stays offline cannot grow without limit: past `limit`, `push`
 * refuses the new frame and keeps the ones already waiting. `held` counts
 * frames kept elsewhere against the same limit (a session's unacknowledged ones).
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

  push(frame: Frame, held = 0): boolean {
    if (this.#frames.length + held >= this.limit) return false
    this.#frames.push(frame)
    return true
  }

  shift(): Frame | undefined {
    return this.#frames.shift()
  }

  frames(): readonly Frame[] {
    return this.#frames
  }

  /** Empties the box and returns what it held. */
  clear(): Frame[] {
    const frames = this.#frames
    this.#frames = []
    return frames
  }

  /** Frames loaded from a store, before anything else is queued; kept whole, since each was accepted once. */
  restore(frames: Frame[]): void {
    this.#frames = frames
  }
}
