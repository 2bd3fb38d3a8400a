import { readdir, readFile } from 'node:fs/promises'

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
      void this.#sample(pgid, pid)
    }, 500)
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  describe(): string {
    return this.#peakKiB === 0 ? 'not measured (no /proc)' : `${(this.#peakKiB / 1024).toFixed(0)} MiB`
  }

  async #sample(pgid: number, only: number | undefined): Promise<void> {
    let pids: string[]
    try {
      pids =
        only === undefined ? (await readdir('/proc')).filter((name) => /^\d+$/.test(name)) : [String(only)]
    } catch {
      return
    }
    for (const pid of pids) {
      try {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
        // Fields after the command name, which is in parentheses and may hold spaces.
        const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
        const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
        if (group !== pgid || command !== 'workerd') continue
        const status = await readFile(`/proc/${pid}/status`, 'utf8')
        const peak = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0)
        this.#peakKiB = Math.max(this.#peakKiB, peak)
      } catch {
        // The process ended between the listing and the read.
      }
    }
  }
}
