import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect, type Client, type WebSocketConstructor } from '../../src/client/index.ts'
import type { ToClient, ToServer } from '../../test/e2e/fixtures/chaos/protocol.ts'
import { git } from './abuse.ts'
import {
  REPO_ROOT,
  buildWorker,
  defaultStateStore,
  startDevServer,
  type DevServer,
  type StateStore,
} from './devServer.ts'
import { dialingRuntime } from '../../tools/wranglerWorkerd.ts'
import { FLOOR, floorStorm, type FloorStorm } from './stormFloor.ts'
import {
  PADDING_BYTES,
  STORM_LOADS,
  STREAM_CPU_MS,
  STREAM_MS,
  startStream,
  type StormLoad,
} from './stormStream.ts'
import { Peak, until } from './watch.ts'
import { cpuIfRunning, cpuPercentSince, type CpuReading } from './proc.ts'
import { describeHost, type Host } from './servers.ts'

/**
 * A deploy, as a busy room's clients meet it, at bench sizes: the deploy
 * storm of test/e2e/deployStorm.test.ts, measured rather than asserted. For
 * each size, a `wrangler dev` of the chaos fixture (test/e2e/fixtures/chaos:
 * one room that broadcasts what it is asked to and records every message in
 * SQLite), N session clients of the package's own client in one room and a
 * broadcaster sending ~1 KB, which the room sends to everyone, at a rate
 * that keeps the room's load the same at every size (below).
 * After a few seconds of stream the runtime's whole process group is
 * SIGKILLed and started again on the same state and port, with the bundle
 * built before (as a deploy would not rebuild on the machine), and the
 * clients, with their default backoff, do the rest.
 */

const FIXTURE = join(REPO_ROOT, 'test/e2e/fixtures/chaos')
const ROOM = 'storm'
const PADDING = 'x'.repeat(PADDING_BYTES)
export { LOADS, STORM_LOADS, type StormLoad } from './stormStream.ts'

/** Every phase of a size, and the whole size, is bounded: a size that does not recover reports it. */
const SIZE_BUDGET_MS = 180_000

export const FULL_SIZES = [1_000, 5_000] as const
/** Runs of each load, size and drop in a full run; the report gives their median and range. */
export const FULL_REPEAT = 3
export const QUICK_SIZES = [200, 1_000] as const

/** The issue's target: every session back and caught up within this many times the first open. */
export const TARGET_RATIO = 1.3

/**
 * How the room's sockets all drop at once: `object`, the room's object reset
 * while the runtime stays up (what a deploy or a runtime update does to an
 * object on Cloudflare: its sockets drop and the next request starts it
 * again, on the same storage); `runtime`, the whole `wrangler dev` SIGKILLed
 * and started again, so the clients also wait out the seconds it is gone.
 */
export type Restart = 'object' | 'runtime'

export const RESTARTS: readonly Restart[] = ['object', 'runtime']

export interface StormSize {
  restart: Restart
  load: StormLoad
  /** Session clients in the room, the broadcaster not counted. */
  clients: number
  /** From the first dial to every client (and the broadcaster) open. */
  openMs: number
  /**
   * SIGKILL to the restarted `wrangler dev` ready again (wrangler's start,
   * not the package's work); for an object reset, the reset call's own time,
   * which the times below include (they run from the reset's request).
   */
  downMs: number | undefined
  /** From the runtime ready again to the first session open again: the clients' backoff, mostly. */
  firstBackMs: number | undefined
  /** This process's CPU (every client's) from ready again to caught up, in % of one core. */
  clientCpuPercent: number | undefined
  /**
   * The runtime workerd's CPU, in % of one core: over the first open, over
   * the last 2 s of the stream before the drop (what the room's load takes
   * from the object's one thread), and from ready again to caught up.
   */
  runtimeCpuPercent: { open: number | undefined; stream: number | undefined; recovery: number | undefined }
  /** Median over the sessions of ready again to its open again. */
  medianBackMs: number | undefined
  /** From the runtime ready again to every session open again. */
  backMs: number | undefined
  /** From the runtime ready again to every client holding every broadcast sent before all were back. */
  caughtUpMs: number | undefined
  /** Peak RSS of the runtime workerd (200 ms samples) from the first dial to the kill. */
  peakBeforeBytes: number
  /** The same, of the restarted runtime, from its start to every client caught up. */
  peakAfterBytes: number
  /** Peak RSS of wrangler's proxy workerd over the whole size, either instance. */
  peakProxyBytes: number
  broadcastsSent: number
  clientMessagesSent: number
  /** Sessions that opened again resumed (a `resumed` open); should be all. */
  resumed: number
  resets: number
  /** A broadcast received at or below the highest one already received. */
  duplicates: number
  /** Broadcasts skipped: a client's list of broadcasts is not 1, 2, 3, … */
  gaps: number
  /** What went wrong, if anything: a timeout, a client that gave up, a protocol error. */
  problems: string[]
}

export interface StormResults {
  date: string
  commit: string
  srcDirty: boolean
  mode: 'quick' | 'full'
  state: StateStore
  sizes: number[]
  repeat: number
  /** The sizes came from `--storm-sizes`, not the defaults. */
  customSizes: boolean
  fdLimit: { soft: string; hard: string }
  /** The clients dialled the runtime workerd's own port, not wrangler's proxy. */
  direct: boolean
  machine: Host
  loadBefore: number[]
  loadAfter: number[]
  durationMs: number
  runs: StormSize[]
  floor: FloorStorm[]
}

export interface StormOptions {
  quick: boolean
  /** Sizes other than the defaults (`--storm-sizes 100,300`), for a trial run. */
  sizes?: readonly number[]
  /** Only these restarts (`--storm-restart object`); both by default. */
  restarts?: readonly Restart[]
  /** Only these loads (`--storm-load busy`); both by default. */
  loads?: readonly StormLoad[]
  /** Runs of each load, size and drop (`--storm-repeat`): one run's ratio strays by a third. */
  repeat?: number
  /** Through wrangler's proxy (`--storm-proxy`) rather than the runtime's own port. */
  proxy?: boolean
  say(line: string): void
}

/** The soft and hard open-file limits of this process (each client is a socket). */
export function openFileLimit(): { soft: string; hard: string } {
  try {
    const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return { soft: line?.[1] ?? 'unknown', hard: line?.[2] ?? 'unknown' }
  } catch {
    return { soft: 'unknown', hard: 'unknown' }
  }
}

/**
 * File descriptors a size needs in the one process that needs most: on the
 * runtime's own port, the runtime workerd holds two per client (this process
 * one); through wrangler's proxy, the proxy workerd holds about 4.3 per
 * client (4,362 at 1,000). Plus headroom.
 */
export function descriptorsFor(clients: number, direct = true): number {
  return Math.ceil((direct ? 2 : 4.4) * clients) + 1_024
}

interface Peer {
  readonly client: Client<ToClient, ToServer>
  opens: number
  /** performance.now() at its latest open. */
  openedAt: number
  resumedOpens: number
  resets: number
  /** The highest `b` received, and how many broadcasts arrived out of turn. */
  last: number
  duplicates: number
  gaps: number
  sent: number
  problem: string | undefined
  /** Every close the client saw, by code: after the drop, one per failed attempt besides the drop's own. */
  readonly closes: Map<number, number>
}

function peer(url: string, dial: WebSocketConstructor, stopping: () => boolean, maxQueued: number): Peer {
  const client = connect<ToClient, ToServer>(url, { WebSocket: dial, maxQueued })
  const p: Peer = {
    client,
    opens: 0,
    openedAt: 0,
    resumedOpens: 0,
    resets: 0,
    last: 0,
    duplicates: 0,
    gaps: 0,
    sent: 0,
    problem: undefined,
    closes: new Map(),
  }
  client.on('open', ({ resumed }) => {
    p.opens += 1
    p.openedAt = performance.now()
    if (resumed) p.resumedOpens += 1
  })
  client.on('reset', () => {
    p.resets += 1
  })
  client.on('message', (message) => {
    // The room only broadcasts to these clients; they make no requests.
    if (!('b' in message)) return
    if (message.b <= p.last) p.duplicates += 1
    else {
      p.gaps += message.b - p.last - 1
      p.last = message.b
    }
  })
  client.on('error', (error) => {
    // A refused or cut socket while wrangler restarts is what the run is about.
    if (error.code !== 'ERR_DWS_SOCKET_ERROR') p.problem ??= `${error.code}: ${error.message}`
  })
  client.on('close', ({ code, willReconnect }) => {
    p.closes.set(code, (p.closes.get(code) ?? 0) + 1)
    if (!willReconnect && !stopping()) p.problem ??= `gave up after close ${String(code)}`
  })
  return p
}

async function runSize(
  clients: number,
  restart: Restart,
  load: StormLoad,
  direct: boolean,
  scratch: string,
  bundle: string,
  say: (line: string) => void,
): Promise<StormSize> {
  const deadline = performance.now() + SIZE_BUDGET_MS
  const label = `storm ${String(clients)} ${load} ${restart}`
  const state = defaultStateStore()
  const persistTo =
    state === 'memory'
      ? await mkdtemp('/dev/shm/durable-websocket-bench-storm-')
      : join(scratch, `state-${String(clients)}`)
  await mkdir(persistTo, { recursive: true })
  let dev: DevServer | undefined
  let stopping = false
  const peers: Peer[] = []
  let stopStream: (() => void) | undefined
  const samplers: Peak[] = []
  const result: StormSize = {
    restart,
    load,
    clients,
    openMs: Number.NaN,
    downMs: undefined,
    firstBackMs: undefined,
    clientCpuPercent: undefined,
    runtimeCpuPercent: { open: undefined, stream: undefined, recovery: undefined },
    medianBackMs: undefined,
    backMs: undefined,
    caughtUpMs: undefined,
    peakBeforeBytes: 0,
    peakAfterBytes: 0,
    peakProxyBytes: 0,
    broadcastsSent: 0,
    clientMessagesSent: 0,
    resumed: 0,
    resets: 0,
    duplicates: 0,
    gaps: 0,
    problems: [],
  }
  try {
    const start = (port?: number): Promise<DevServer> =>
      startDevServer(FIXTURE, join(scratch, `dev-${String(clients)}`), {
        direct,
        persistTo,
        bundle,
        ...(port === undefined ? {} : { port }),
      })
    dev = await start()
    const port = Number(new URL(dev.publicOrigin).port)
    const url = `${dev.publicOrigin.replace(/^http/, 'ws')}/ws/${ROOM}`
    // The runtime's port while it runs; after a SIGKILL, the new runtime's once it is up.
    let dialOrigin = dev.wsOrigin
    const dial = dialingRuntime(() => dialOrigin)
    let runtimePid: number | undefined = dev.runtimePid
    let proxyPid: number | undefined = dev.proxyPid
    const proxyPeak = new Peak(() => proxyPid)
    samplers.push(proxyPeak)
    let runtimePeak = new Peak(() => runtimePid)
    samplers.push(runtimePeak)
    const failed = (): boolean => peers.some((p) => p.problem !== undefined)

    say(`${label}: wrangler dev on port ${String(port)}; opening ${String(clients)} session clients`)
    // The runtime of the moment: a SIGKILL replaces it.
    const cpuNow = (): CpuReading | undefined => cpuIfRunning(runtimePid)
    const runtimeCpu = (from: CpuReading | undefined, ms: number): number | undefined =>
      cpuPercentSince(runtimePid, from, ms)
    const cpuAtOpen = cpuNow()
    const openStarted = performance.now()
    // A broadcaster's queue holds what it sends while the runtime is down: a minute of ticks and more.
    const broadcaster = peer(url, dial, () => stopping, 5_000)
    for (let i = 0; i < clients; i++) peers.push(peer(url, dial, () => stopping, 1_000))
    peers.push(broadcaster)
    const openAt = await until(() => peers.every((p) => p.opens > 0), deadline, failed)
    if (openAt === undefined)
      throw new Error(
        `not every client opened (${String(peers.filter((p) => p.opens > 0).length)} of ${String(peers.length)})`,
      )
    result.openMs = openAt - openStarted
    result.runtimeCpuPercent.open = runtimeCpu(cpuAtOpen, result.openMs)
    say(`${label}: every client open in ${(result.openMs / 1000).toFixed(1)} s; streaming`)

    // Every few ticks a broadcast of ~1 KB; each tick a share of the clients send one numbered message.
    stopStream = startStream(
      clients,
      load,
      () => {
        broadcaster.sent += 1
        if (!broadcaster.client.send({ b: broadcaster.sent, p: PADDING }))
          broadcaster.problem ??= `broadcast ${String(broadcaster.sent)} refused`
      },
      (index) => {
        const p = peers[index]
        if (p === undefined) return
        p.sent += 1
        // A full queue (the runtime down longer than the queue lasts) refuses, which is counted, not fatal.
        if (p.client.send({ n: p.sent })) result.clientMessagesSent += 1
      },
    )
    // The stream's share of the object's thread, once it is steady: what a recovery competes with.
    await sleep(STREAM_MS - STREAM_CPU_MS)
    const cpuAtStream = cpuNow()
    const streamFrom = performance.now()
    await sleep(STREAM_CPU_MS)
    result.runtimeCpuPercent.stream = runtimeCpu(cpuAtStream, performance.now() - streamFrom)

    const opensBefore = peers.map((p) => p.opens)
    const resumedBefore = peers.map((p) => p.resumedOpens)
    result.peakBeforeBytes = runtimePeak.stop()
    const runtimeCpuAtDrop = cpuNow()
    const killedAt = performance.now()
    if (restart === 'runtime') {
      say(`${label}: SIGKILL to the runtime's process group`)
      runtimePid = undefined
      proxyPid = undefined
      await dev.kill()
      dev = undefined
      dev = await start(port)
      dialOrigin = dev.wsOrigin
    } else {
      say(`${label}: the room's object reset, the runtime up`)
      const reset = await fetch(`${dev.origin}/rooms/${ROOM}/restart`, { method: 'POST' })
      if (reset.status !== 204) throw new Error(`the object restart answered ${String(reset.status)}`)
    }
    result.downMs = performance.now() - killedAt
    // After a reset the runtime never went away: the clock runs from the reset's request, its
    // teardown of the sockets included. After a SIGKILL it runs from the runtime ready again.
    const readyAt = restart === 'object' ? killedAt : performance.now()
    const cpuAtReady = process.cpuUsage()
    runtimePid = dev.runtimePid
    // The same process after a reset, read before its request; a new one after a SIGKILL.
    const runtimeCpuAtReady = restart === 'object' ? runtimeCpuAtDrop : cpuNow()
    void until(
      () => peers.some((p, i) => p.opens > (opensBefore[i] ?? 0)),
      deadline,
      () => stopping,
    ).then((at) => {
      if (at !== undefined) result.firstBackMs = at - readyAt
    })
    proxyPid = dev.proxyPid
    runtimePeak = new Peak(() => runtimePid)
    samplers.push(runtimePeak)
    say(`${label}: ready again after ${(result.downMs / 1000).toFixed(1)} s; waiting for every session`)

    const backAt = await until(() => peers.every((p, i) => p.opens > (opensBefore[i] ?? 0)), deadline, failed)
    if (backAt !== undefined) {
      result.backMs = backAt - readyAt
      const backs = peers.map((p) => p.openedAt - readyAt).sort((a, b) => a - b)
      result.medianBackMs = backs[Math.floor(backs.length / 2)]
      // The newest broadcast sent by then: holding it, a client holds every one before it (delivery
      // is in order), so everything it missed. Not the next one, which a quiet room sends seconds later.
      const target = broadcaster.sent
      const caughtAt = await until(() => peers.every((p) => p.last >= target), deadline, failed)
      if (caughtAt !== undefined) {
        result.caughtUpMs = caughtAt - readyAt
        const cpu = process.cpuUsage(cpuAtReady)
        result.clientCpuPercent = ((cpu.user + cpu.system) / 1_000 / result.caughtUpMs) * 100
        result.runtimeCpuPercent.recovery = runtimeCpu(runtimeCpuAtReady, caughtAt - readyAt)
      } else result.problems.push(`not every client caught up to broadcast ${String(target)} in time`)
    } else {
      const behind = peers.filter((p, i) => p.opens <= (opensBefore[i] ?? 0)).length
      result.problems.push(`${String(behind)} client(s) not back in time`)
    }
    const closes = new Map<number, number>()
    for (const p of peers) for (const [code, n] of p.closes) closes.set(code, (closes.get(code) ?? 0) + n)
    say(
      `${label}: closes seen by the clients, by code: ${[...closes].map(([code, n]) => `${String(code)} ×${String(n)}`).join(', ')}`,
    )
    result.peakAfterBytes = runtimePeak.stop()
    result.peakProxyBytes = proxyPeak.stop()
    stopStream()
    stopStream = undefined
    result.broadcastsSent = broadcaster.sent
    result.resumed = peers.filter((p, i) => p.resumedOpens > (resumedBefore[i] ?? 0)).length
    say(
      `${label}: back ${fmt(result.backMs)} s, caught up ${fmt(result.caughtUpMs)} s after ready; first open ${fmt(result.openMs)} s`,
    )
  } catch (error) {
    result.problems.push(error instanceof Error ? error.message : String(error))
    if (dev !== undefined) say(`${label}: wrangler dev said\n${dev.output().slice(-2_000)}`)
  } finally {
    stopping = true
    stopStream?.()
    for (const sampler of samplers) sampler.stop()
    for (const p of peers) {
      result.resets += p.resets
      result.duplicates += p.duplicates
      result.gaps += p.gaps
      if (p.problem !== undefined && result.problems.length < 5) result.problems.push(p.problem)
    }
    for (const p of peers) p.client.close()
    // Give the closes a moment to leave, then make sure no socket is left behind.
    await sleep(500)
    if (dev !== undefined)
      await dev.stop().catch((error: unknown) => say(`storm: wrangler dev would not stop: ${String(error)}`))
    await rm(persistTo, { recursive: true, force: true })
  }
  return result
}

function fmt(ms: number | undefined): string {
  return ms === undefined || Number.isNaN(ms) ? '—' : (ms / 1000).toFixed(1)
}

/** Each size on a `wrangler dev` of its own, one after another. */
export async function runStorm(options: StormOptions): Promise<StormResults> {
  const began = performance.now()
  const sizes = [...(options.sizes ?? (options.quick ? QUICK_SIZES : FULL_SIZES))]
  const repeat = options.repeat ?? (options.quick ? 1 : FULL_REPEAT)
  const loadBefore = os.loadavg()
  // Node raises its own soft open-file limit to the hard one as it starts, and wrangler and workerd
  // inherit it: only a hard limit too low for the largest size is a problem, and only
  // `ulimit -Hn` (as root) or the system's limits can raise that.
  const fdLimit = openFileLimit()
  const direct = options.proxy !== true
  const needed = descriptorsFor(Math.max(...sizes), direct)
  if (fdLimit.soft !== 'unlimited' && Number(fdLimit.soft) < needed)
    options.say(
      `storm: the open-file limit is ${fdLimit.soft} (hard ${fdLimit.hard}), under the ${String(needed)} the largest size needs: sockets past it will fail; raise the hard limit (ulimit -Hn, /etc/security/limits.conf) to measure it`,
    )
  const scratch = await mkdtemp(join(os.tmpdir(), 'durable-websocket-bench-storm-'))
  const runs: StormSize[] = []
  const floor: FloorStorm[] = []
  try {
    const bundle = await buildWorker(FIXTURE, join(scratch, 'build'), false)
    const floorBundle = await buildWorker(FLOOR, join(scratch, 'build-floor'), false)
    const say = (line: string): void => {
      options.say(line)
    }
    // Repeats go round the whole set, so a slow minute of the machine does not land on one group.
    for (let round = 0; round < repeat; round++) {
      for (const load of options.loads ?? STORM_LOADS)
        for (const clients of sizes) {
          const f = await floorStorm(clients, load, scratch, floorBundle, ROOM, SIZE_BUDGET_MS)
          say(
            `storm ${String(clients)} ${load} floor: a hand-written object's connections open in ${fmt(f.openMs)} s; after its reset (${fmt(f.resetMs)} s) all back in ${fmt(f.backMs)} s`,
          )
          floor.push(f)
        }
      for (const load of options.loads ?? STORM_LOADS)
        for (const clients of sizes)
          for (const restart of options.restarts ?? RESTARTS)
            runs.push(await runSize(clients, restart, load, direct, scratch, bundle, say))
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  return {
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcDirty: git(['status', '--porcelain', '--', 'src']) !== '',
    mode: options.quick ? 'quick' : 'full',
    state: defaultStateStore(),
    sizes,
    repeat,
    customSizes: options.sizes !== undefined,
    fdLimit,
    direct,
    machine: describeHost(),
    loadBefore,
    loadAfter: os.loadavg(),
    durationMs: performance.now() - began,
    runs,
    floor,
  }
}
