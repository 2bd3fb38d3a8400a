import { cpuBetween, readCpu, readMachineBusyMs, type CpuClock, type CpuReading } from './proc.ts'

/** The processes whose CPU a measured span reads. */
export interface Target {
  /** The process that runs the server's code: the runtime workerd (or the loopback Node server). */
  readonly runtimePid: number
  /** wrangler's proxy workerd; undefined for the loopback server. */
  readonly proxyPid: number | undefined
}

/** One measured span of one scenario on one server. */
export interface Sample {
  ops: number
  wallMs: number
  /** Worker CPU over the span: the scheduler's ns counters where the kernel has them, else utime + stime. */
  workerCpuMs: number
  /** Which counter `workerCpuMs` (and `proxyCpuMs`) came from. */
  workerCpuClock: CpuClock
  /** utime + stime (/proc/<pid>/stat) over the same span, always read: the cross-check of the ns counters. */
  workerTicksMs: number
  proxyCpuMs: number | undefined
  clientCpuMs: number
  /** Busy time of every CPU of the machine over the span. */
  machineBusyMs: number
  /** Per-operation latencies in ms. */
  latencies: number[]
}

interface Mark {
  at: number
  worker: CpuReading
  proxy: CpuReading | undefined
  client: NodeJS.CpuUsage
  machine: number
}

function mark(target: Target): Mark {
  return {
    at: performance.now(),
    worker: readCpu(target.runtimePid),
    proxy: target.proxyPid === undefined ? undefined : readCpu(target.proxyPid),
    client: process.cpuUsage(),
    machine: readMachineBusyMs(),
  }
}

/**
 * Brackets exactly the measured span: CPU and the clock are read when it
 * starts and when it ends, and only operations completed in between count.
 */
export class Span {
  readonly #target: Target
  #start: Mark | undefined
  #end: Mark | undefined
  ops = 0
  readonly latencies: number[] = []

  constructor(target: Target) {
    this.#target = target
  }

  get recording(): boolean {
    return this.#start !== undefined && this.#end === undefined
  }

  start(): void {
    this.#start = mark(this.#target)
  }

  stop(): void {
    this.#end = mark(this.#target)
  }

  /** Counts operations finished now; `latencyMs` is recorded beside them when given. */
  done(count: number, latencyMs?: number): void {
    if (!this.recording) return
    this.ops += count
    if (latencyMs !== undefined) this.latencies.push(latencyMs)
  }

  /** Records a latency that ended now, for operations counted one by one as they finished. */
  latency(ms: number): void {
    if (this.recording) this.latencies.push(ms)
  }

  sample(): Sample {
    const start = this.#start
    const end = this.#end
    if (start === undefined || end === undefined) throw new Error('the span was never started and stopped')
    const worker = cpuBetween(start.worker, end.worker)
    return {
      ops: this.ops,
      wallMs: end.at - start.at,
      workerCpuMs: worker.ms,
      workerCpuClock: worker.clock,
      workerTicksMs: end.worker.statMs - start.worker.statMs,
      proxyCpuMs:
        start.proxy === undefined || end.proxy === undefined
          ? undefined
          : cpuBetween(start.proxy, end.proxy).ms,
      clientCpuMs: (end.client.user + end.client.system - start.client.user - start.client.system) / 1000,
      machineBusyMs: end.machine - start.machine,
      latencies: this.latencies,
    }
  }
}
