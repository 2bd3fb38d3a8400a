import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type WebSocket from 'ws'
import type { ShardStats } from '../../src/object/shard/stats.ts'
import { git } from './abuse.ts'
import { closeAll, openMany } from './client.ts'
import { REPO_ROOT, defaultStateStore, startDevServer, type DevServer, type StateStore } from './devServer.ts'
import { cpuBetween, readCpu, type CpuClock } from './proc.ts'
import { describeHost, rotate, type Host } from './servers.ts'
import { protocolProblems } from './sessionSocket.ts'
import { descriptorsFor, openFileLimit } from './storm.ts'

/**
 * A sharded room against an ordinary one (docs/sharding.md), one script
 * (bench/servers/shards): N clients in an ordinary room and N in a room of
 * {@link LEAVES} leaves (N / 4 each), plain sockets and session sockets.
 * Measured, round after round, each room in turn:
 * - worker CPU per delivery of a broadcast a client's handler makes, one
 *   message per turn (nothing for the shards to batch) and 20 in one turn;
 * - object-to-object calls per room-wide message, from the counters each
 *   part keeps (shard/stats.ts): the same two cases, which are the room
 *   without batching and with it;
 * - the root's ceiling: a stream of RPC broadcasts to the root, many in
 *   flight, how fast it numbers them and how fast every socket has them.
 */

export const LEAVES = 4
export const FULL_CLIENTS = 1_000
export const QUICK_CLIENTS = 400
const FULL_ROUNDS = 10
const QUICK_ROUNDS = 5
const WARMUP_ROUNDS = 1
/** Triggers per measured window: single messages one turn each, or bursts of {@link BURST} in one turn. */
export const SINGLES = 20
export const BURSTS = 4
export const BURST = 20
/** The root's ceiling: RPC broadcasts in one stream, this many in flight. */
const STREAM_FULL = 5_000
const STREAM_QUICK = 2_000
export const STREAM_IN_FLIGHT = 64
/** Into a room with sockets, the stream stops at about this many deliveries: a minute or so here. */
const DELIVERY_BUDGET = 200_000
const PAUSE_MS = 200
const WAIT_MS = 60_000

export type RoomKind = 'ordinary' | 'sharded'
export type ClientKind = 'plain' | 'session'
export type Trigger = 'single' | 'burst'
export const ROOM_KINDS: readonly RoomKind[] = ['ordinary', 'sharded']
export const CLIENT_KINDS: readonly ClientKind[] = ['plain', 'session']
export const TRIGGERS: readonly Trigger[] = ['single', 'burst']

/** What the bench server's `GET /stats/<room>` answers: the root's counters and each leaf's, in leaf order. */
interface RoomStats {
  root: ShardStats
  leaves: ShardStats[]
}

export interface DeliverySample {
  round: number
  /** Room-wide messages in the window, and deliveries (messages × N). */
  messages: number
  deliveries: number
  ms: number
  cpuMs: number
  clock: CpuClock
  /** Sharded only: calls leaves made to the root (publications, catch-ups) and the root to leaves (batches). */
  leafCalls: number
  rootCalls: number
  failedCalls: number
}

export type DeliveryKey = `${ClientKind}/${Trigger}/${RoomKind}`

export interface CeilingSample {
  room: RoomKind
  /** Sockets in the room (plain): 0 for the empty sharded room. */
  sockets: number
  count: number
  /** From the first RPC to the last one answered: numbered (sharded) or sent to every socket (ordinary). */
  acceptedMs: number
  /** From the first RPC until every leaf applied the last number (sharded) and every socket had every message. */
  deliveredMs: number
  cpuMs: number
  rootCalls: number
  leafCalls: number
  failedCalls: number
}

export interface ShardsResults {
  date: string
  commit: string
  srcDirty: boolean
  mode: 'quick' | 'full'
  clients: number
  rounds: number
  state: StateStore
  fdLimit: { soft: string; hard: string }
  machine: Host
  loadBefore: number[]
  loadAfter: number[]
  durationMs: number
  deliveries: Partial<Record<DeliveryKey, DeliverySample[]>>
  ceiling: CeilingSample[]
  problems: string[]
}

export interface ShardsOptions {
  quick: boolean
  direct: boolean
  clients?: number
  say(line: string): void
}

/** One room's N sockets, and how many data frames they received so far, all of them together. */
interface Room {
  kind: RoomKind
  clients: ClientKind
  name: string
  sockets: WebSocket[]
  received: { count: number; waiter: { target: number; resolve: () => void } | undefined }
}

function listen(room: Room): void {
  for (const socket of room.sockets)
    socket.on('message', () => {
      const received = room.received
      received.count++
      if (received.waiter !== undefined && received.count >= received.waiter.target) {
        const { resolve } = received.waiter
        received.waiter = undefined
        resolve()
      }
    })
}

/** Resolves once the room's sockets received `more` frames in all from now, or rejects after {@link WAIT_MS}. */
function receive(room: Room, more: number): Promise<void> {
  const target = room.received.count + more
  if (room.received.count >= target) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      room.received.waiter = undefined
      reject(
        new Error(
          `${room.name}: ${String(target - room.received.count)} of ${String(more)} frames missing after ${String(WAIT_MS)} ms`,
        ),
      )
    }, WAIT_MS)
    room.received.waiter = {
      target,
      resolve: () => {
        clearTimeout(timer)
        resolve()
      },
    }
  })
}

/** Waits for `done`, calling `poke` every 2 s meanwhile. */
async function whilePoking(done: Promise<void>, poke: () => Promise<unknown>): Promise<void> {
  for (;;) {
    const finished = await Promise.race([done.then(() => true), sleep(2_000).then(() => false)])
    if (finished) return
    await poke()
  }
}

async function statsOf(origin: string, room: string): Promise<RoomStats> {
  const response = await fetch(`${origin}/stats/${room}`)
  if (!response.ok) throw new Error(`/stats/${room}: ${String(response.status)} ${await response.text()}`)
  return (await response.json()) as RoomStats
}

/** The parts that are not the instance they were at `before`: an evicted one starts counting again at zero. */
function restarted(before: RoomStats, after: RoomStats): string[] {
  const parts = before.root.since === after.root.since ? [] : ['the root']
  before.leaves.forEach((leaf, n) => {
    if (leaf.since !== after.leaves[n]?.since) parts.push(`leaf ${String(n)}`)
  })
  return parts
}

function leafCalls(stats: RoomStats): number {
  return stats.leaves.reduce((sum, leaf) => sum + leaf.calls, 0)
}

function failed(stats: RoomStats): number {
  return stats.root.failed + stats.leaves.reduce((sum, leaf) => sum + leaf.failed, 0)
}

/** The calls made between two readings, NaN where an object restarted in between (its counters did too). */
function callsBetween(
  before: RoomStats,
  after: RoomStats,
): { leafCalls: number; rootCalls: number; failedCalls: number } {
  if (restarted(before, after).length > 0) return { leafCalls: NaN, rootCalls: NaN, failedCalls: NaN }
  return {
    leafCalls: leafCalls(after) - leafCalls(before),
    rootCalls: after.root.calls - before.root.calls,
    failedCalls: failed(after) - failed(before),
  }
}

const NO_STATS: RoomStats = {
  root: { part: 'root', since: 0, at: 0, calls: 0, failed: 0, taken: 0, messages: 0, rows: 0 },
  leaves: [] as ShardStats[],
}

export async function runShards(options: ShardsOptions): Promise<ShardsResults> {
  const began = performance.now()
  const clients = options.clients ?? (options.quick ? QUICK_CLIENTS : FULL_CLIENTS)
  if (clients % LEAVES !== 0) throw new Error(`--shards-clients must be a multiple of ${String(LEAVES)}`)
  const rounds = options.quick ? QUICK_ROUNDS : FULL_ROUNDS
  const loadBefore = os.loadavg()
  const fdLimit = openFileLimit()
  const results: ShardsResults = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcDirty: git(['status', '--porcelain', '--', 'src']) !== '',
    mode: options.quick ? 'quick' : 'full',
    clients,
    rounds,
    state: defaultStateStore(),
    fdLimit,
    machine: describeHost(),
    loadBefore,
    loadAfter: loadBefore,
    durationMs: 0,
    deliveries: {},
    ceiling: [],
    problems: [],
  }
  const sockets = 4 * clients
  if (fdLimit.soft !== 'unlimited' && Number(fdLimit.soft) < descriptorsFor(sockets))
    options.say(
      `shards: the open-file limit is ${fdLimit.soft}, under the ${String(descriptorsFor(sockets))} needed`,
    )
  const scratch = await mkdtemp(join(os.tmpdir(), 'durable-websocket-bench-shards-'))
  let dev: DevServer | undefined
  const rooms: Room[] = []
  const problemsBefore = protocolProblems.length
  try {
    options.say(
      `shards: starting wrangler dev for bench/servers/shards, ${String(clients / LEAVES)} sockets per leaf`,
    )
    dev = await startDevServer(join(REPO_ROOT, 'bench/servers/shards'), join(scratch, 'dev'), {
      direct: options.direct,
      vars: { BENCH_SHARD_SOCKETS: String(clients / LEAVES) },
    })
    const { wsOrigin, origin, runtimePid } = dev
    for (const clientKind of CLIENT_KINDS)
      for (const kind of ROOM_KINDS) {
        const name = `${clientKind}-${kind}`
        const url = `${wsOrigin}/${kind === 'sharded' ? 'shards' : 'ws'}/${name}`
        options.say(`shards: opening ${String(clients)} ${clientKind} sockets in the ${kind} room`)
        const room: Room = {
          kind,
          clients: clientKind,
          name,
          // 25 handshakes at a time into both: upgrades racing for a sharded leaf's last places are
          // sent on to the next leaf (docs/sharding.md, "Placement"), so every leaf still fills exactly.
          sockets: await openMany(url, clients, clientKind, 25),
          received: { count: 0, waiter: undefined },
        }
        listen(room)
        rooms.push(room)
      }

    const measure = async (room: Room, trigger: Trigger, round: number): Promise<void> => {
      const sender = room.sockets[0]
      if (sender === undefined) throw new Error('no sender')
      const triggers = trigger === 'single' ? SINGLES : BURSTS
      const perTrigger = trigger === 'single' ? 1 : BURST
      const sharded = room.kind === 'sharded'
      const before = sharded ? await statsOf(origin, room.name) : NO_STATS
      const cpuBefore = readCpu(runtimePid)
      const startedAt = performance.now()
      // One trigger at a time, each waited for: a single is then alone in its turn everywhere.
      for (let t = 0; t < triggers; t++) {
        const all = receive(room, perTrigger * clients)
        sender.send(JSON.stringify({ broadcast: perTrigger }))
        await all
      }
      const ms = performance.now() - startedAt
      const cpu = cpuBetween(cpuBefore, readCpu(runtimePid))
      const after = sharded ? await statsOf(origin, room.name) : NO_STATS
      const messages = triggers * perTrigger
      if (round >= 0)
        (results.deliveries[`${room.clients}/${trigger}/${room.kind}`] ??= []).push({
          round,
          messages,
          deliveries: messages * clients,
          ms,
          cpuMs: cpu.ms,
          clock: cpu.clock,
          ...callsBetween(before, after),
        })
      await sleep(PAUSE_MS)
    }

    for (let round = -WARMUP_ROUNDS; round < rounds; round++) {
      const order = rotate(rooms, Math.max(0, round))
      for (const trigger of TRIGGERS) for (const room of order) await measure(room, trigger, round)
      if (round >= 0) options.say(`shards: round ${String(round + 1)} of ${String(rounds)} measured`)
    }

    const streamInto = async (room: Room | undefined, kind: RoomKind, name: string): Promise<void> => {
      const sharded = kind === 'sharded'
      const count = Math.min(
        options.quick ? STREAM_QUICK : STREAM_FULL,
        room === undefined ? Infinity : Math.floor(DELIVERY_BUDGET / clients),
      )
      const before = sharded ? await statsOf(origin, name) : NO_STATS
      const all = room === undefined ? Promise.resolve() : receive(room, count * clients)
      const cpuBefore = readCpu(runtimePid)
      const startedAt = performance.now()
      const response = await fetch(
        `${origin}/stream/${kind}/${name}?count=${String(count)}&inFlight=${String(STREAM_IN_FLIGHT)}`,
        { method: 'POST' },
      )
      if (!response.ok) throw new Error(`/stream: ${String(response.status)} ${await response.text()}`)
      const acceptedMs = performance.now() - startedAt
      // Reading the counters now and then keeps the root in memory while the leaves deliver:
      // wrangler dev evicts an object 10 s after its last event, and its counters with it.
      await (sharded ? whilePoking(all, () => statsOf(origin, name)) : all)
      let after = sharded ? await statsOf(origin, name) : NO_STATS
      while (sharded && after.leaves.some((leaf) => leaf.at < after.root.at)) {
        if (performance.now() - startedAt > WAIT_MS) throw new Error(`${name}: the leaves did not catch up`)
        await sleep(5)
        after = await statsOf(origin, name)
      }
      const deliveredMs = performance.now() - startedAt
      const cpu = cpuBetween(cpuBefore, readCpu(runtimePid))
      results.ceiling.push({
        room: kind,
        sockets: room === undefined ? 0 : clients,
        count,
        acceptedMs,
        deliveredMs,
        cpuMs: cpu.ms,
        ...callsBetween(before, after),
      })
      const again = restarted(before, after)
      if (again.length > 0)
        options.say(
          `shards: ${again.join(', ')} of ${name} started again meanwhile; their calls are not counted`,
        )
      options.say(
        `shards: ${String(count)} RPC broadcasts into the ${kind} room ${name}: accepted in ${acceptedMs.toFixed(0)} ms, everywhere in ${deliveredMs.toFixed(0)} ms`,
      )
      await sleep(PAUSE_MS)
    }
    // The same stream into an ordinary room with no socket: what the Worker's RPC calls cost alone.
    await streamInto(undefined, 'ordinary', 'empty-ordinary')
    await streamInto(undefined, 'sharded', 'empty-sharded')
    for (const room of rooms.filter((r) => r.clients === 'plain'))
      await streamInto(room, room.kind, room.name)
  } catch (error) {
    results.problems.push(error instanceof Error ? error.message : String(error))
    if (dev !== undefined) options.say(`shards: wrangler dev said\n${dev.output().slice(-2_000)}`)
  } finally {
    results.problems.push(...protocolProblems.slice(problemsBefore, problemsBefore + 5))
    for (const room of rooms) await closeAll(room.sockets).catch(() => undefined)
    if (dev !== undefined)
      await dev
        .stop()
        .catch((error: unknown) => options.say(`shards: wrangler dev would not stop: ${String(error)}`))
    await rm(scratch, { recursive: true, force: true })
  }
  results.loadAfter = os.loadavg()
  results.durationMs = performance.now() - began
  return results
}
