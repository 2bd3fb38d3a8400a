import { readFileSync } from 'node:fs'
import { processGroup } from '../../tools/wranglerWorkerd.js'

/**
 * The highest resident memory any workerd of a process group reached (Linux's
 * VmHWM), sampled twice a second: the runtime's peak, across restarts.
 * With `pid`, only that process's (the runtime, not wrangler's proxy).
 */
export class PeakMemory {
  #peakKiB = 0
  #timer: ReturnType<typeof setInterval> | undefined

  watch(pgid: number, pid?: number): void {
    this.stop()
    this.#timer = setInterval(() => {
      this.#sample(pgid, pid)
    }, 500)
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  describe(): string {
    return this.#peakKiB === 0 ? 'not measured (no /proc)' : `${(this.#peakKiB / 1024).toFixed(0)} MiB`
  }

  #sample(pgid: number, only: number | undefined): void {
    let pids: number[]
    try {
      pids =
        only === undefined
          ? processGroup(pgid)
              .filter((member) => member.args[0]?.endsWith('/workerd') === true)
              .map((member) => member.pid)
          : [only]
    } catch {
      return // no /proc
    }
    for (const pid of pids) {
      try {
        const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8')
        const peak = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0)
        this.#peakKiB = Math.max(this.#peakKiB, peak)
      } catch {
        // The process ended between the listing and the read.
      }
    }
  }
}
