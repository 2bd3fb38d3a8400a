import { setTimeout as sleep } from 'node:timers/promises'
import { readRssBytes } from './proc.ts'

/** How often {@link Peak} reads a process's resident memory. */
const SAMPLE_MS = 200

/** Polls `done` every 20 ms; the time it first held, or undefined at the deadline or on a problem. */
export async function until(
  done: () => boolean,
  deadline: number,
  failed: () => boolean,
): Promise<number | undefined> {
  for (;;) {
    if (done()) return performance.now()
    if (failed() || performance.now() > deadline) return undefined
    await sleep(20)
  }
}

/** Peak RSS of whatever pid `pid()` names, sampled every SAMPLE_MS until stopped. */
export class Peak {
  bytes = 0
  readonly #timer: ReturnType<typeof setInterval>

  constructor(pid: () => number | undefined) {
    const sample = (): void => {
      const current = pid()
      if (current === undefined) return
      try {
        this.bytes = Math.max(this.bytes, readRssBytes(current))
      } catch {
        // killed between samples
      }
    }
    sample()
    this.#timer = setInterval(sample, SAMPLE_MS)
  }

  stop(): number {
    clearInterval(this.#timer)
    return this.bytes
  }
}
