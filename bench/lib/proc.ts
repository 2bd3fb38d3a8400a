import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { statFields } from '../../tools/wranglerWorkerd.ts'

/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat (100 on every Linux we run on, but ask). */
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

export interface CpuReading {
  /** utime + stime from /proc/<pid>/stat, in ms: the whole process, 1/USER_HZ resolution. */
  statMs: number
  /**
   * The sum of `se.sum_exec_runtime` over /proc/<pid>/task/*\/sched, in ms with
   * nanosecond resolution; undefined where the kernel does not expose it.
   */
  schedMs: number | undefined
}

/** Which counter a CPU figure came from: the scheduler's ns counters, or USER_HZ ticks. */
export type CpuClock = 'sched' | 'ticks'

/**
 * The CPU used between two readings of one process: from the scheduler's ns
 * counters where both readings have them, since a span of a second or two
 * holds only a hundred or two USER_HZ ticks; from utime + stime otherwise.
 */
export function cpuBetween(start: CpuReading, end: CpuReading): { ms: number; clock: CpuClock } {
  return start.schedMs === undefined || end.schedMs === undefined
    ? { ms: end.statMs - start.statMs, clock: 'ticks' }
    : { ms: end.schedMs - start.schedMs, clock: 'sched' }
}

/** A process's CPU reading, or undefined without a pid or once the process is gone (a runtime SIGKILLed mid-run). */
export function cpuIfRunning(pid: number | undefined): CpuReading | undefined {
  if (pid === undefined) return undefined
  try {
    return readCpu(pid)
  } catch {
    return undefined
  }
}

/** The CPU of process `pid` from the reading `from` to now, in % of one core over `ms`; undefined if either reading is missing. */
export function cpuPercentSince(
  pid: number | undefined,
  from: CpuReading | undefined,
  ms: number,
): number | undefined {
  const now = cpuIfRunning(pid)
  return from === undefined || now === undefined ? undefined : (cpuBetween(from, now).ms / ms) * 100
}

export function readCpu(pid: number): CpuReading {
  const fields = statFields(pid)
  // Fields 14 and 15 of proc(5) are utime and stime; this array starts at field 3.
  const ticks = Number(fields[11]) + Number(fields[12])
  return { statMs: (ticks * 1000) / TICKS_PER_SECOND, schedMs: readSchedMs(pid) }
}

const SUM_EXEC = /se\.sum_exec_runtime\s*:\s*([\d.]+)/

function readSchedMs(pid: number): number | undefined {
  let total = 0
  try {
    for (const task of readdirSync(`/proc/${String(pid)}/task`)) {
      let text: string
      try {
        text = readFileSync(`/proc/${String(pid)}/task/${task}/sched`, 'utf8')
      } catch {
        continue // a thread that ended between the listing and the read
      }
      const ms = SUM_EXEC.exec(text)?.[1]
      if (ms === undefined) return undefined
      total += Number(ms)
    }
  } catch {
    return undefined
  }
  return total
}

/** Resident set size in bytes (VmRSS). */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8')
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
  if (kb === undefined) throw new Error(`no VmRSS for process ${String(pid)}`)
  return Number(kb) * 1024
}

/** Busy time of the whole machine (every CPU) from /proc/stat, in ms. */
export function readMachineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  // cpu user nice system idle iowait irq softirq steal ...
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number)
  const ticks = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)
  return (ticks * 1000) / TICKS_PER_SECOND
}
