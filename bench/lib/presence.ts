import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PresenceFrame } from '../../src/shared/presenceFrames.ts'
import { git } from './abuse.ts'
import { SOCKET_OPTIONS, closeAll, closeSocket, welcomed } from './client.ts'
import { defaultStateStore, startDevServer, type DevServer, type StateStore } from './devServer.ts'
import { cpuBetween, readCpu, type CpuClock } from './proc.ts'
import { BROADCAST_TRIGGER } from './scenarios.ts'
import { SERVERS, describeHost, type Host } from './servers.ts'
import { SessionSocket, protocolProblems } from './sessionSocket.ts'
import { descriptorsFor, openFileLimit } from './storm.ts'

/**
 * What presence costs a busy room: N session sockets of the package's bench
 * server with presence on (BENCH_PRESENCE=on), each its own member and each
 * holding the whole list, then, round after round, one more member joining,
 * updating its metadata and leaving, each timed until all N watchers got the
 * diff that names it, with the runtime's CPU over that span. The same N get a
 * plain broadcast of one small message in each round, the reference: the
 * diff's fan-out over a broadcast's is what presence adds.
 */

export const FULL_MEMBERS = 1_000
export const QUICK_MEMBERS = 200
const ROOM = 'presence'
/** Unmeasured rounds first, so the JIT and the object's statements are warm. */
const WARMUP_ROUNDS = 2
const FULL_ROUNDS = 10
const QUICK_ROUNDS = 6
/** Between two operations, so one's trailing work is not in the next one's CPU. */
const PAUSE_MS = 300
/** Every wait is bounded: one operation, and the whole room's opening. */
const OP_TIMEOUT_MS = 30_000
const OPEN_BUDGET_MS = 300_000
const OPEN_CONCURRENCY = 25

export type Operation = 'broadcast' | 'join' | 'update' | 'leave'
export const OPERATIONS: readonly Operation[] = ['broadcast', 'join', 'update', 'leave']

export interface OpSample {
  round: number
  /** From the trigger (the dial, the send, the close) to the last of the N watchers holding it. */
  ms: number
  /** For a join: from the dial to the joiner's own welcome. */
  welcomeMs: number | undefined
  /** The runtime workerd's CPU over the same span. */
  cpuMs: number
  clock: CpuClock
  /** Presence frames (data frames, for the broadcast) the N watchers received over the span. */
  frames: number
  /** The size of the frame that named the operation's member (of the broadcast's copy), as text. */
  frameBytes: number
}

export interface PresenceResults {
  date: string
  commit: string
  srcDirty: boolean
  mode: 'quick' | 'full'
  /** `--presence-members` rather than the default. */
  customMembers: boolean
  members: number
  rounds: number
  warmupRounds: number
  state: StateStore
  direct: boolean
  fdLimit: { soft: string; hard: string }
  machine: Host
  loadBefore: number[]
  loadAfter: number[]
  durationMs: number
  /** From the first dial to every watcher holding the whole list of N. */
  openMs: number
  /** The full list's frame, as the last watcher got it (bytes of text). */
  listBytes: number
  samples: Record<Operation, OpSample[]>
  problems: string[]
}

export interface PresenceOptions {
  quick: boolean
  direct: boolean
  /** Members other than the default (`--presence-members 100`), for a trial run. */
  members?: number
  say(line: string): void
}

/** One of the N: a session socket that keeps the room's list as the frames tell it. */
interface Watcher {
  socket: SessionSocket
  members: Set<string>
  presenceFrames: number
  listBytes: number
}

function watch(socket: SessionSocket): Watcher {
  const w: Watcher = { socket, members: new Set(), presenceFrames: 0, listBytes: 0 }
  socket.on('presence', (frame: PresenceFrame, bytes: number) => {
    w.presenceFrames++
    if (frame.kind === 'list') {
      w.members = new Set(frame.members.map((m) => m.key))
      w.listBytes = bytes
      return
    }
    for (const m of frame.join) w.members.add(m.key)
    for (const key of frame.leave) w.members.delete(key)
  })
  return w
}

function memberUrl(origin: string, member: string): string {
  return `${origin}/ws/${ROOM}?member=${encodeURIComponent(member)}`
}

/** Opens a session socket and resolves once it is open; its welcome may come later. */
function dial(url: string): { socket: SessionSocket; open: Promise<void> } {
  const socket = new SessionSocket(url, SOCKET_OPTIONS)
  const open = new Promise<void>((resolve, reject) => {
    socket.once('open', () => {
      socket.on('error', () => undefined)
      resolve()
    })
    socket.once('error', (error) => reject(new Error(`${url}: ${error.message}`, { cause: error })))
  })
  return { socket, open }
}

/**
 * Resolves with performance.now() once every watcher has seen a frame for
 * which `names` holds (each watcher's own listener, added before the trigger),
 * or rejects at the timeout.
 */
function allSee(
  watchers: readonly Watcher[],
  names: (frame: PresenceFrame) => boolean,
  bytes: { value: number },
): { done: Promise<number>; cancel(): void } {
  let left = watchers.length
  const cleanups: (() => void)[] = []
  let timer: ReturnType<typeof setTimeout> | undefined
  const cancel = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    for (const cleanup of cleanups) cleanup()
    cleanups.length = 0
  }
  const done = new Promise<number>((resolve, reject) => {
    timer = setTimeout(() => {
      cancel()
      reject(new Error(`${String(left)} of ${String(watchers.length)} watchers did not see it in time`))
    }, OP_TIMEOUT_MS)
    for (const w of watchers) {
      const listener = (frame: PresenceFrame, size: number): void => {
        if (!names(frame)) return
        bytes.value = size
        w.socket.off('presence', listener)
        if (--left === 0) {
          const at = performance.now()
          cancel()
          resolve(at)
        }
      }
      w.socket.on('presence', listener)
      cleanups.push(() => w.socket.off('presence', listener))
    }
  })
  done.catch(() => undefined)
  return { done, cancel }
}

/** The same, for one broadcast copy (a data frame) on every watcher. */
function allReceive(watchers: readonly Watcher[], bytes: { value: number }): Promise<number> {
  let left = watchers.length
  const cleanups: (() => void)[] = []
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      for (const cleanup of cleanups) cleanup()
      reject(new Error(`${String(left)} of ${String(watchers.length)} watchers missed the broadcast`))
    }, OP_TIMEOUT_MS)
    for (const w of watchers) {
      const listener = (data: Buffer): void => {
        bytes.value = data.length
        if (--left === 0) {
          const at = performance.now()
          clearTimeout(timer)
          for (const cleanup of cleanups) cleanup()
          resolve(at)
        }
      }
      w.socket.once('message', listener)
      cleanups.push(() => w.socket.off('message', listener))
    }
  })
}

function framesOf(watchers: readonly Watcher[], kind: 'presence' | 'data'): number {
  let total = 0
  for (const w of watchers) total += kind === 'presence' ? w.presenceFrames : w.socket.received
  return total
}

/** Polls until every watcher holds all `members` keys, bounded by the budget. */
async function everyoneHolds(watchers: readonly Watcher[], members: number, deadline: number): Promise<void> {
  for (;;) {
    if (watchers.every((w) => w.members.size === members)) return
    if (performance.now() > deadline) {
      const short = watchers.filter((w) => w.members.size !== members).length
      throw new Error(`${String(short)} watcher(s) do not hold the list of ${String(members)} in time`)
    }
    await sleep(50)
  }
}

export async function runPresence(options: PresenceOptions): Promise<PresenceResults> {
  const began = performance.now()
  const members = options.members ?? (options.quick ? QUICK_MEMBERS : FULL_MEMBERS)
  const rounds = options.quick ? QUICK_ROUNDS : FULL_ROUNDS
  const loadBefore = os.loadavg()
  const fdLimit = openFileLimit()
  const results: PresenceResults = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcDirty: git(['status', '--porcelain', '--', 'src']) !== '',
    mode: options.quick ? 'quick' : 'full',
    customMembers: options.members !== undefined,
    members,
    rounds,
    warmupRounds: WARMUP_ROUNDS,
    state: defaultStateStore(),
    direct: options.direct,
    fdLimit,
    machine: describeHost(),
    loadBefore,
    loadAfter: loadBefore,
    durationMs: 0,
    openMs: Number.NaN,
    listBytes: 0,
    samples: { broadcast: [], join: [], update: [], leave: [] },
    problems: [],
  }
  if (fdLimit.soft !== 'unlimited' && Number(fdLimit.soft) < descriptorsFor(members))
    options.say(
      `presence: the open-file limit is ${fdLimit.soft}, under the ${String(descriptorsFor(members))} ${String(members)} members need`,
    )
  const server = SERVERS.find((s) => s.key === 'package')
  if (server === undefined) throw new Error('no package bench server')
  const scratch = await mkdtemp(join(os.tmpdir(), 'durable-websocket-bench-presence-'))
  let dev: DevServer | undefined
  const watchers: Watcher[] = []
  const extras: SessionSocket[] = []
  const problemsBefore = protocolProblems.length
  try {
    options.say('presence: starting wrangler dev for the package server with BENCH_PRESENCE=on')
    dev = await startDevServer(server.dir, join(scratch, 'dev'), {
      direct: options.direct,
      vars: { BENCH_PRESENCE: 'on' },
    })
    const origin = dev.wsOrigin
    const runtimePid = dev.runtimePid

    options.say(`presence: opening ${String(members)} session sockets, one member each`)
    const openStarted = performance.now()
    const deadline = openStarted + OPEN_BUDGET_MS
    let next = 0
    const opener = async (): Promise<void> => {
      while (next < members) {
        const i = next++
        const url = memberUrl(origin, `m${String(i)}`)
        const { socket, open } = dial(url)
        watchers.push(watch(socket))
        await open
        await welcomed(socket, url)
      }
    }
    await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, members) }, opener))
    await everyoneHolds(watchers, members, deadline)
    results.openMs = performance.now() - openStarted
    results.listBytes = Math.max(...watchers.map((w) => w.listBytes))
    options.say(
      `presence: ${String(members)} members, every one holding the whole list, in ${(results.openMs / 1000).toFixed(1)} s`,
    )
    // The broadcast's trigger comes from one more socket, no member's watcher: each copy then
    // goes to the N watchers (and the trigger's sender), as a diff goes to the N and the joiner.
    const trigger = dial(memberUrl(origin, 'broadcaster'))
    extras.push(trigger.socket)
    await trigger.open
    await welcomed(trigger.socket, 'broadcaster')
    await everyoneHolds(watchers, members + 1, performance.now() + OP_TIMEOUT_MS)
    await sleep(PAUSE_MS)

    const measure = async (
      op: Operation,
      round: number,
      arm: (bytes: { value: number }) => Promise<number>,
      act: () => Promise<number | undefined>,
    ): Promise<void> => {
      const kind = op === 'broadcast' ? 'data' : 'presence'
      const bytes = { value: 0 }
      const framesBefore = framesOf(watchers, kind)
      const cpuBefore = readCpu(runtimePid)
      const startedAt = performance.now()
      const seen = arm(bytes)
      const welcomeAt = await act()
      const doneAt = await seen
      const cpu = cpuBetween(cpuBefore, readCpu(runtimePid))
      if (round >= 0)
        results.samples[op].push({
          round,
          ms: doneAt - startedAt,
          welcomeMs: welcomeAt === undefined ? undefined : welcomeAt - startedAt,
          cpuMs: cpu.ms,
          clock: cpu.clock,
          frames: framesOf(watchers, kind) - framesBefore,
          frameBytes: bytes.value,
        })
      await sleep(PAUSE_MS)
    }

    for (let r = -WARMUP_ROUNDS; r < rounds; r++) {
      const key = `joiner-${String(r + WARMUP_ROUNDS)}`
      await measure(
        'broadcast',
        r,
        (bytes) => allReceive(watchers, bytes),
        () => {
          trigger.socket.send(BROADCAST_TRIGGER)
          return Promise.resolve(undefined)
        },
      )
      let joiner: SessionSocket | undefined
      await measure(
        'join',
        r,
        (bytes) =>
          allSee(watchers, (f) => f.kind === 'diff' && f.join.some((m) => m.key === key), bytes).done,
        async () => {
          const { socket, open } = dial(memberUrl(origin, key))
          joiner = socket
          extras.push(socket)
          await open
          await welcomed(socket, key)
          return performance.now()
        },
      )
      const member = joiner
      if (member === undefined) throw new Error('the joiner never opened')
      await measure(
        'update',
        r,
        (bytes) =>
          allSee(watchers, (f) => f.kind === 'diff' && f.update.some((m) => m.key === key), bytes).done,
        () => {
          member.send(JSON.stringify({ presence: { status: 'away', round: r } }))
          return Promise.resolve(undefined)
        },
      )
      await measure(
        'leave',
        r,
        (bytes) => allSee(watchers, (f) => f.kind === 'diff' && f.leave.includes(key), bytes).done,
        () => {
          member.close(1000)
          return Promise.resolve(undefined)
        },
      )
      await closeSocket(member)
      if (r >= 0) {
        const last = (op: Operation): string => {
          const s = results.samples[op].at(-1)
          return s === undefined ? '—' : `${s.ms.toFixed(1)} ms / ${s.cpuMs.toFixed(1)} ms CPU`
        }
        options.say(
          `presence round ${String(r + 1)}: broadcast ${last('broadcast')}, join ${last('join')}, update ${last('update')}, leave ${last('leave')}`,
        )
      }
    }
  } catch (error) {
    results.problems.push(error instanceof Error ? error.message : String(error))
    if (dev !== undefined) options.say(`presence: wrangler dev said\n${dev.output().slice(-2_000)}`)
  } finally {
    results.problems.push(...protocolProblems.slice(problemsBefore, problemsBefore + 5))
    await closeAll([...extras, ...watchers.map((w) => w.socket)]).catch(() => undefined)
    if (dev !== undefined)
      await dev
        .stop()
        .catch((error: unknown) => options.say(`presence: wrangler dev would not stop: ${String(error)}`))
    await rm(scratch, { recursive: true, force: true })
  }
  results.loadAfter = os.loadavg()
  results.durationMs = performance.now() - began
  return results
}
