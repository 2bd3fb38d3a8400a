import type { Frame } from '../shared/serializer.js'
import { QueuedRequest } from './Requests.js'

/** What waits for a socket: a message's frame, or a request (which gets its number when it goes out). */
export type Queued = Frame | QueuedRequest

/**
 * Encoded frames waiting for a socket, oldest first. Bounded, so a client
 * that stays offline cannot grow without limit: past `limit`, `push`
 * refuses the new frame and keeps the ones already waiting. `held` counts
 * frames kept elsewhere against the same limit (a session's unacknowledged ones).
 */
export class Outbox {
  readonly limit: number
  #frames: Queued[] = []

  constructor(limit: number) {
    this.limit = limit
  }

  get size(): number {
    return this.#frames.length
  }

  push(frame: Queued, held = 0): boolean {
    if (this.#frames.length + held >= this.limit) return false
    this.#frames.push(frame)
    return true
  }

  shift(): Queued | undefined {
    return this.#frames.shift()
  }

  /** The messages waiting, for a store to keep: a request cannot outlive its page's promise, so it is left out. */
  frames(): Frame[] {
    return this.#frames.filter((queued): queued is Frame => !(queued instanceof QueuedRequest))
  }

  /** Empties the box and returns what it held. */
  clear(): Queued[] {
    const frames = this.#frames
    this.#frames = []
    return frames
  }

  /** Frames loaded from a store, before anything else is queued; kept whole, since each was accepted once. */
  restore(frames: Frame[]): void {
    this.#frames = frames
  }
}
