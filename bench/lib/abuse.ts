import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { constants, deflateRawSync } from 'node:zlib'
import WebSocket from 'ws'
import { RATE_LIMIT_VAR, formatRateLimit, type RateLimit } from '../servers/rateLimit.ts'
import { closeAll, closeSocket, openMany, openSocket, request } from './client.ts'
import { REPO_ROOT, startDevServer, type DevServer } from './devServer.ts'
import { readRssBytes } from './proc.ts'
import { Opcode, clientFrame, openRaw, type RawSocket } from './rawSocket.ts'
import { ECHO_MESSAGE } from './scenarios.ts'
import { SERVERS, type ServerKey, type ServerSpec } from './servers.ts'
import { SESSION_PROTOCOL } from './sessionSocket.ts'

/** How long the stalled reader's room is under broadcast load. */
export const STALL_MS = 10_000
/** Each trigger broadcasts this many copies, each padded to about this many bytes. */
export const STALL_BATCH = 100
export const STALL_PAD_BYTES = 2_048
/** Sockets in the stalled reader's room that do read: the one sending the triggers among them. */
export const STALL_READERS = 4
/** After the load, the stalled reader reads on for at most this long to see how it ends. */
export const DRAIN_MS = 10_000
/** durable-websocket/client acknowledges after this many data frames (docs/protocol.md §5). */
const ACK_EVERY = 32
/** The load stops early past this growth of either workerd: a bound on what the bench may cost the machine. */
const RSS_CAP_BYTES = 1_536 * 1_048_576

/** Frames of ~31 KB on the wire that inflate to 31 MiB: under the runtime's own 32 MiB limit. */
export const BOMB_BYTES = 31 * 1_048_576
export const BOMBS = 10
/** How long the bombs are given to be inflated, or refused. */
const BOMB_SETTLE_MS = 3_000

/** Echo clients beside the flooder, each sending one message every ECHO_INTERVAL_MS. */
export const FLOOD_ECHOERS = 5
export const ECHO_INTERVAL_MS = 20
export const FLOOD_ROUNDS = 3
export const FLOOD_WARMUP_MS = 500
export const FLOOD_WINDOW_MS = 3_000
/**
 * Messages the flooder keeps unanswered at most, so its backlog drains in a
 * fraction of a second: the runtime reads a flooder's frames far ahead of
 * handling them, and with 5,000 in flight the echo clients got almost no
 * reply at all until the flood stopped.
 */
export const FLOOD_OUTSTANDING = 1_000
/** After the window, how long a message sent in it may wait for its reply, the flood still going. */
export const ECHO_GRACE_MS = 5_000
/** Well above what an echo client sends (50 a second), so only the flooder can reach it. */
export const RATE_LIMIT: RateLimit = { messages: 200, perSeconds: 1 }
const DRAIN_TIMEOUT_MS = 10_000

export interface Rss {
  beforeBytes: number
  peakBytes: number
  /** Once the abusive client is gone and a second has passed. */
  afterBytes: number
}

export interface MemoryGrowth {
  runtime: Rss
  proxy: Rss
}

/**
 * What the stalled reader is: a plain WebSocket, which nothing on the server
 * can bound (the runtime exposes no `bufferedAmount`), or a session client
 * (`dws.session.v1`), which the send window holds and 3903 ends.
 */
export type StallClient = 'plain' | 'session'

export interface StallResult {
  server: ServerKey
  client: StallClient
  /** Copies each socket in the room was sent while the reader stalled. */
  copies: number
  /** The bytes of one copy on the wire. */
  copyBytes: number
  loadMs: number
  /** Whether the load stopped before STALL_MS because a workerd grew past the cap. */
  capped: boolean
  memory: MemoryGrowth
  /** Copies the stalled reader got once it read again, within DRAIN_MS (a session client acking as it reads). */
  drained: number
  drainMs: number
  /** How its connection ended: a close code, a TCP end without one, or still open when the bench dropped it. */
  ending: string
  /**
   * When the server logged that it held the session client's live sends, and
   * that it closed it with 3903, in ms from the start of the load: the close
   * frame itself reaches a paused reader only once it reads again.
   */
  serverSaid: { heldAtMs?: number; closedAtMs?: number }
}

export interface BombResult {
  server: ServerKey
  /** Sec-WebSocket-Extensions of each 101, deduplicated. */
  extensions: string[]
  /** How each bomb's connection ended, counted. */
  endings: Record<string, number>
  memory: MemoryGrowth
}

export interface FloodRound {
  /** Round-trip times of the echo clients over the window, in ms, with no flooder in the room. */
  quiet: number[]
  /** The same with the flooder in the room. */
  flooded: number[]
  /** Messages the flooder had answered within the window. */
  flooderAnswered: number
  /** How the flooder's connection ended, if the server ended it. */
  flooderEnding: string | undefined
  /** Echo clients the server closed, in either half of the round. */
  echoersClosed: number
}

export interface FloodResult {
  label: string
  /** The limit asked of the server, `<messages>/<seconds>`; undefined for the row without one. */
  rateLimit: string | undefined
  /** False when the server was asked for a limit it could not apply: the row is then left empty. */
  available: boolean
  rounds: FloodRound[]
}

export interface AbuseResults {
  date: string
  commit: string
  /** Whether src/ had uncommitted changes, so `commit` is not the whole story. */
  srcDirty: boolean
  direct: boolean
  loadBefore: number[]
  loadAfter: number[]
  durationMs: number
  stall: StallResult[]
  bomb: BombResult[]
  flood: FloodResult[]
}

export interface AbuseOptions {
  direct: boolean
  say: (line: string) => void
}

/** The two servers the abuse section compares: the floor sends no `no-compression` and has no flow control. */
function spec(key: 'package' | 'raw'): ServerSpec {
  const found = SERVERS.find((s) => s.key === key)
  if (found === undefined) throw new Error(`no bench server ${key}`)
  return found
}

/**
 * Runs the abuse section: every measurement on a server of its own, started
 * just before it and stopped right after, so what one abuse left in a
 * process's memory never hides what the next one costs.
 */
export async function runAbuse(options: AbuseOptions): Promise<AbuseResults> {
  const began = performance.now()
  const scratch = await mkdtemp(join(os.tmpdir(), 'durable-websocket-abuse-'))
  process.once('exit', () => rmSync(scratch, { recursive: true, force: true }))
  const results: AbuseResults = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcDirty: git(['status', '--porcelain', '--', 'src']) !== '',
    direct: options.direct,
    loadBefore: os.loadavg(),
    loadAfter: [],
    durationMs: 0,
    stall: [],
    bomb: [],
    flood: [],
  }
  let started = 0
  const serve = async <T>(
    key: 'package' | 'raw',
    vars: Record<string, string>,
    measure: (server: DevServer, spec: ServerSpec) => Promise<T>,
  ): Promise<T> => {
    const server = await startDevServer(spec(key).dir, join(scratch, `dev-${String(++started)}`), {
      direct: options.direct,
      vars,
    })
    try {
      return await measure(server, spec(key))
    } catch (error) {
      console.error(`--- ${key}: wrangler dev said\n${server.output().slice(-3_000)}`)
      throw error
    } finally {
      await server.stop()
    }
  }
  try {
    const stalls = [
      ['raw', 'plain'],
      ['package', 'plain'],
      ['package', 'session'],
    ] as const
    for (const [key, client] of stalls) {
      const result = await serve(key, {}, (server, s) => stalledReader(server, s, client))
      results.stall.push(result)
      options.say(
        `abuse: stalled ${client} reader on ${key}: ${String(result.copies)} copies, runtime RSS +${mib(result.memory.runtime.peakBytes - result.memory.runtime.beforeBytes)} MiB, proxy +${mib(result.memory.proxy.peakBytes - result.memory.proxy.beforeBytes)} MiB; ${result.ending}`,
      )
    }
    for (const key of ['raw', 'package'] as const) {
      const result = await serve(key, {}, (server, s) => deflateBomb(server, s))
      results.bomb.push(result)
      options.say(
        `abuse: deflate bomb on ${key}: extensions ${result.extensions.join(' | ')}, runtime RSS +${mib(result.memory.runtime.peakBytes - result.memory.runtime.beforeBytes)} MiB, proxy +${mib(result.memory.proxy.peakBytes - result.memory.proxy.beforeBytes)} MiB`,
      )
    }
    for (const rateLimit of [undefined, RATE_LIMIT]) {
      const label =
        rateLimit === undefined ? 'rate limit off' : `rate limit on (${formatRateLimit(rateLimit)})`
      const vars = rateLimit === undefined ? {} : { [RATE_LIMIT_VAR]: formatRateLimit(rateLimit) }
      const result = await serve('package', vars, (server, s) =>
        flooder(server, s, label, rateLimit, (line) => options.say(line)),
      )
      results.flood.push(result)
      if (!result.available)
        options.say(`abuse: flooder, ${label}: not available (its /health did not name it as applied)`)
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  results.loadAfter = os.loadavg()
  results.durationMs = performance.now() - began
  return results
}

export function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

function mib(bytes: number): string {
  return (bytes / 1_048_576).toFixed(0)
}

/** Peak RSS of the runtime and the proxy, sampled every 20 ms from `start()` on. */
class RssWatch {
  readonly #pids: { runtime: number; proxy: number }
  readonly #before: { runtime: number; proxy: number }
  readonly #peak: { runtime: number; proxy: number }
  readonly #timer: NodeJS.Timeout

  constructor(server: DevServer) {
    this.#pids = { runtime: server.runtimePid, proxy: server.proxyPid }
    this.#before = { runtime: readRssBytes(server.runtimePid), proxy: readRssBytes(server.proxyPid) }
    this.#peak = { ...this.#before }
    this.#timer = setInterval(() => this.sample(), 20)
  }

  sample(): void {
    this.#peak.runtime = Math.max(this.#peak.runtime, readRssBytes(this.#pids.runtime))
    this.#peak.proxy = Math.max(this.#peak.proxy, readRssBytes(this.#pids.proxy))
  }

  /** The larger growth so far of the two processes. */
  grown(): number {
    return Math.max(this.#peak.runtime - this.#before.runtime, this.#peak.proxy - this.#before.proxy)
  }

  stopSampling(): void {
    this.sample()
    clearInterval(this.#timer)
  }

  /** Call once the abuse is over: reads the RSS left behind. */
  result(): MemoryGrowth {
    clearInterval(this.#timer)
    return {
      runtime: {
        beforeBytes: this.#before.runtime,
        peakBytes: this.#peak.runtime,
        afterBytes: readRssBytes(this.#pids.runtime),
      },
      proxy: {
        beforeBytes: this.#before.proxy,
        peakBytes: this.#peak.proxy,
        afterBytes: readRssBytes(this.#pids.proxy),
      },
    }
  }
}

/** Constructs the room's object and warms the isolate, so RSS read after this is the baseline. */
async function warmUp(url: string): Promise<void> {
  const socket = await openSocket(url)
  try {
    await request(socket, ECHO_MESSAGE)
  } finally {
    await closeSocket(socket)
  }
}

/** Resolves once `socket` has received `count` more messages; rejects after `timeoutMs`. */
function messages(socket: WebSocket, count: number, timeoutMs: number): Promise<void> {
  return new Promise((resolveAll, reject) => {
    let left = count
    const onMessage = (): void => {
      if (--left > 0) return
      clearTimeout(timer)
      socket.off('message', onMessage)
      resolveAll()
    }
    const timer = setTimeout(() => {
      socket.off('message', onMessage)
      reject(
        new Error(`${String(left)} of ${String(count)} messages still missing after ${String(timeoutMs)} ms`),
      )
    }, timeoutMs)
    socket.on('message', onMessage)
  })
}

/**
 * A raw socket stops reading while the room is under broadcast load: one
 * reader sends `{ broadcast, pad }` and waits for its own copies before the
 * next trigger, the others read along. A plain one stops right after its
 * 101; a session one offers `dws.session.v1`, reads its welcome, then stops,
 * sending no ack. Whatever the object sends it and cannot deliver is held
 * somewhere, unless the object stops sending.
 */
async function stalledReader(server: DevServer, spec: ServerSpec, client: StallClient): Promise<StallResult> {
  const url = `${server.wsOrigin}${spec.path(`stall-${client}`)}`
  const readers = await openMany(url, STALL_READERS)
  const [driver] = readers
  if (driver === undefined) throw new Error('no reader to drive the broadcasts')
  const trigger = JSON.stringify({ broadcast: STALL_BATCH, pad: STALL_PAD_BYTES })
  const session = client === 'session' ? new SessionTally() : undefined
  let stalled: RawSocket | undefined
  try {
    // One batch before the stalled reader joins: the object is constructed and the copy's size known.
    let copyBytes = 0
    driver.once('message', (data: WebSocket.RawData) => (copyBytes = frameBytes(byteLength(data))))
    const first = messages(driver, STALL_BATCH, 30_000)
    driver.send(trigger)
    await first
    stalled = await openRaw(
      url,
      session === undefined
        ? { pauseAfterFrames: 0, timeoutMs: 30_000 }
        : {
            headers: [`Sec-WebSocket-Protocol: ${SESSION_PROTOCOL}`],
            pauseAfterFrames: 1,
            onData: (payload) => session.read(payload),
            timeoutMs: 30_000,
          },
    )
    if (session !== undefined) {
      if (stalled.protocol !== SESSION_PROTOCOL) {
        throw new Error(`the 101 named ${stalled.protocol ?? 'no subprotocol'}, not ${SESSION_PROTOCOL}`)
      }
      if (!session.welcomed) throw new Error('the first frame on the session socket was not a welcome')
    }
    await sleep(500)
    const watch = new RssWatch(server)
    const serverSaid: StallResult['serverSaid'] = {}
    const startedAt = performance.now()
    let batches = 0
    let capped = false
    while (performance.now() - startedAt < STALL_MS) {
      if (watch.grown() > RSS_CAP_BYTES) {
        capped = true
        break
      }
      const batch = messages(driver, STALL_BATCH, 30_000)
      driver.send(trigger)
      await batch
      batches++
      if (session !== undefined) noteServerLog(server.output(), serverSaid, startedAt)
    }
    const loadMs = performance.now() - startedAt
    await sleep(1_000)
    watch.stopSampling()
    const copies = batches * STALL_BATCH
    const { frames } = stalled
    const received = (): number => (session === undefined ? frames.dataFrames : session.data)
    const drainStart = performance.now()
    // Reading again, a session client acks as durable-websocket/client would, so a held one can catch up.
    if (session !== undefined) session.ackOn(stalled.socket)
    stalled.socket.resume()
    // A property, not a `let`: set from a callback, a local would look always false to the type checker.
    const tcp = { ended: false }
    void stalled.ended.then(() => (tcp.ended = true))
    while (
      performance.now() - drainStart < DRAIN_MS &&
      !tcp.ended &&
      stalled.frames.closeCode === undefined
    ) {
      if (received() >= copies) break
      await sleep(20)
    }
    const drainMs = performance.now() - drainStart
    const drained = received()
    if (session?.problem !== undefined)
      throw new Error(`the server broke the session protocol: ${session.problem}`)
    const ending = describeEnding(stalled, tcp.ended, drained, copies, drainMs)
    stalled.socket.destroy()
    await stalled.ended
    await closeAll(readers)
    await sleep(1_000)
    return {
      server: spec.key,
      client,
      copies,
      copyBytes,
      loadMs,
      capped,
      memory: watch.result(),
      drained,
      drainMs,
      ending,
      serverSaid,
    }
  } finally {
    stalled?.socket.destroy()
    for (const reader of readers) reader.terminate()
  }
}

/**
 * What a raw session socket has read: its welcome, then the data frames
 * (`<g> <payload>`), whose highest `g` its acks carry once `ackOn` is called.
 */
class SessionTally {
  welcomed = false
  /** Data frames after the welcome. */
  data = 0
  /** The first breach of the protocol seen, kept rather than thrown: this runs in a socket's data handler. */
  problem: string | undefined
  #last = 0
  #sinceAck = 0
  #socket: Socket | undefined

  read(payload: Buffer): void {
    if (payload[0] === OPEN_BRACE) {
      if (controlType(payload) === 'welcome') {
        if (this.welcomed) this.problem ??= 'a second welcome'
        this.welcomed = true
      }
      return
    }
    const space = payload.indexOf(SPACE)
    const g = space < 1 || space > 16 ? NaN : Number(payload.toString('latin1', 0, space))
    if (!Number.isSafeInteger(g) || g <= this.#last || !this.welcomed) {
      this.problem ??= `data frame ${payload.toString('latin1', 0, 20)} after ${String(this.#last)}${this.welcomed ? '' : ', before the welcome'}`
      return
    }
    this.#last = g
    this.data++
    if (this.#socket !== undefined && ++this.#sinceAck >= ACK_EVERY) {
      this.#sinceAck = 0
      this.#socket.write(clientFrame(Opcode.TEXT, Buffer.from(`{"t":"ack","last":${String(this.#last)}}`)))
    }
  }

  /** From now on, ack every ACK_EVERY data frames on `socket`. */
  ackOn(socket: Socket): void {
    this.#socket = socket
  }
}

function controlType(payload: Buffer): unknown {
  try {
    return (JSON.parse(payload.toString('utf8')) as { t?: unknown }).t
  } catch {
    return undefined
  }
}

const OPEN_BRACE = 0x7b
const SPACE = 0x20

/**
 * The package logs (src/object/manager.ts, log.warn) when it holds a
 * session's live sends and when it closes it with 3903: the first time each
 * line shows, in ms from the start of the load, to the nearest batch. The
 * server is this measurement's own and has one session socket, so any such
 * line is about it; the output keeps only a tail, hence a look every batch.
 */
function noteServerLog(output: string, said: StallResult['serverSaid'], startedAt: number): void {
  const at = performance.now() - startedAt
  if (said.heldAtMs === undefined && output.includes('holding its live sends')) said.heldAtMs = at
  if (said.closedAtMs === undefined && output.includes('closing it with 3903')) said.closedAtMs = at
}

/** The bytes of a server frame with a payload of `length` bytes (unmasked: 2, 4 or 10 bytes of header). */
function frameBytes(length: number): number {
  return length + (length < 126 ? 2 : length <= 0xffff ? 4 : 10)
}

function byteLength(data: WebSocket.RawData): number {
  return Array.isArray(data) ? data.reduce((sum, part) => sum + part.byteLength, 0) : data.byteLength
}

function describeEnding(
  stalled: RawSocket,
  ended: boolean,
  drained: number,
  copies: number,
  drainMs: number,
): string {
  const code = stalled.frames.closeCode
  const got = `after ${drained.toLocaleString('en-US')} of ${copies.toLocaleString('en-US')} copies`
  if (code !== undefined)
    return `closed by the server with ${code === null ? 'a close frame without a code' : String(code)} ${got}`
  if (ended) return `TCP connection ended without a close frame ${got}`
  if (drained >= copies) {
    return `never closed: once it read again it got all ${copies.toLocaleString('en-US')} copies in ${(drainMs / 1000).toFixed(1)} s, nothing dropped`
  }
  return `never closed: still open ${got}, ${(DRAIN_MS / 1000).toFixed(0)} s after it read again`
}

/**
 * BOMBS clients offer permessage-deflate and send one frame each with RSV1
 * set, whether or not the server agreed: ~31 KB of deflate that inflates to
 * 31 MiB. Where compression was agreed the runtime inflates it before any
 * size check; where it was refused the frame is a protocol error.
 */
async function deflateBomb(server: DevServer, spec: ServerSpec): Promise<BombResult> {
  const url = `${server.wsOrigin}${spec.path('bomb')}`
  await warmUp(url)
  await sleep(500)
  // The trailing 00 00 ff ff of a sync flush is left off on the wire (RFC 7692 §7.2.1).
  const flushed = deflateRawSync(Buffer.alloc(BOMB_BYTES, 0x61), { finishFlush: constants.Z_SYNC_FLUSH })
  const bomb = clientFrame(Opcode.BINARY, flushed.subarray(0, flushed.length - 4), { rsv1: true })
  const watch = new RssWatch(server)
  const sockets = await Promise.all(
    Array.from({ length: BOMBS }, () =>
      openRaw(url, { headers: ['Sec-WebSocket-Extensions: permessage-deflate'], timeoutMs: 30_000 }),
    ),
  )
  try {
    const endings = new Map<RawSocket, string>()
    for (const socket of sockets) {
      void socket.ended.then(({ error }) => {
        const code = socket.frames.closeCode
        endings.set(
          socket,
          code === undefined
            ? `TCP ${error ? 'reset' : 'end'} without a close frame`
            : `closed with ${code === null ? 'no code' : String(code)}`,
        )
      })
      socket.socket.write(bomb)
    }
    await sleep(BOMB_SETTLE_MS)
    watch.stopSampling()
    const counted: Record<string, number> = {}
    for (const socket of sockets) {
      const code = socket.frames.closeCode
      const ending =
        endings.get(socket) ??
        (code === undefined
          ? 'still open'
          : `sent a close frame (${code === null ? 'no code' : String(code)}), TCP still open`)
      counted[ending] = (counted[ending] ?? 0) + 1
    }
    for (const socket of sockets) socket.socket.destroy()
    await Promise.all(sockets.map((s) => s.ended))
    await sleep(1_000)
    return {
      server: spec.key,
      extensions: [...new Set(sockets.map((s) => s.extensions ?? '(none)'))],
      endings: counted,
      memory: watch.result(),
    }
  } finally {
    for (const socket of sockets) socket.socket.destroy()
  }
}

/**
 * FLOOD_ROUNDS rounds, each measuring FLOOD_ECHOERS paced echo clients once
 * alone and once beside a client that floods the same room with echo
 * messages as fast as it can, in an order that alternates by round, each
 * half in a room (a new object) of its own.
 */
async function flooder(
  server: DevServer,
  spec: ServerSpec,
  label: string,
  rateLimit: RateLimit | undefined,
  say: (line: string) => void,
): Promise<FloodResult> {
  const result: FloodResult = {
    label,
    rateLimit: rateLimit === undefined ? undefined : formatRateLimit(rateLimit),
    available: true,
    rounds: [],
  }
  if (rateLimit !== undefined) {
    const health = (await (await fetch(`${server.origin}/health`)).json()) as { rateLimitApplied?: unknown }
    if (health.rateLimitApplied !== result.rateLimit) {
      result.available = false
      return result
    }
  }
  for (let round = 0; round < FLOOD_ROUNDS; round++) {
    const halves = round % 2 === 0 ? ([false, true] as const) : ([true, false] as const)
    const measured: Partial<Record<'quiet' | 'flooded', FloodHalf>> = {}
    for (const flood of halves) {
      const room = `flood-r${String(round + 1)}-${flood ? 'flooded' : 'quiet'}`
      const half = await floodHalf(`${server.wsOrigin}${spec.path(room)}`, flood)
      measured[flood ? 'flooded' : 'quiet'] = half
    }
    const quiet = measured.quiet
    const flooded = measured.flooded
    if (quiet === undefined || flooded === undefined) throw new Error('a half of the round was not measured')
    result.rounds.push({
      quiet: quiet.latencies,
      flooded: flooded.latencies,
      flooderAnswered: flooded.flooderAnswered,
      flooderEnding: flooded.flooderEnding,
      echoersClosed: quiet.echoersClosed + flooded.echoersClosed,
    })
    say(
      `abuse: flooder, ${label}, round ${String(round + 1)}: p50 ${p50(quiet.latencies)} ms alone, ${p50(flooded.latencies)} ms beside the flooder (${String(flooded.flooderAnswered)} flood messages answered${flooded.flooderEnding === undefined ? '' : `; flooder ${flooded.flooderEnding}`})`,
    )
  }
  return result
}

/**
 * The nearest-rank quantile: unlike interpolation it stays meaningful when
 * some values are Infinity (a reply that never came).
 */
export function rankQuantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN
}

function p50(values: number[]): string {
  const value = rankQuantile(values, 0.5)
  return Number.isFinite(value) ? value.toFixed(2) : `> ${String(ECHO_GRACE_MS)}`
}

interface FloodHalf {
  latencies: number[]
  flooderAnswered: number
  flooderEnding: string | undefined
  echoersClosed: number
}

async function floodHalf(url: string, flood: boolean): Promise<FloodHalf> {
  const echoers = await openMany(url, FLOOD_ECHOERS)
  const flooderSocket = flood ? await openSocket(url) : undefined
  const latencies: number[] = []
  let recording = false
  let closedByServer = 0
  const flooding = flooderSocket === undefined ? undefined : floodFrom(flooderSocket, () => recording)
  try {
    const pacers = echoers.map((socket, i) => {
      // One entry per message in flight, in order: when it was sent, and whether it was sent in the window.
      const inFlight: { at: number; counted: boolean }[] = []
      socket.on('message', () => {
        const sent = inFlight.shift()
        if (sent?.counted === true) latencies.push(performance.now() - sent.at)
      })
      socket.once('close', () => closedByServer++)
      let timer: NodeJS.Timeout | undefined
      // Staggered, so the clients do not all send in the same millisecond.
      const start = setTimeout(
        () => {
          timer = setInterval(() => {
            if (socket.readyState !== WebSocket.OPEN) return
            inFlight.push({ at: performance.now(), counted: recording })
            socket.send(ECHO_MESSAGE)
          }, ECHO_INTERVAL_MS)
        },
        (i * ECHO_INTERVAL_MS) / FLOOD_ECHOERS,
      )
      return {
        stop: () => {
          clearTimeout(start)
          clearInterval(timer)
        },
        inFlight,
        socket,
      }
    })
    await sleep(FLOOD_WARMUP_MS)
    recording = true
    await sleep(FLOOD_WINDOW_MS)
    recording = false
    for (const pacer of pacers) pacer.stop()
    // The flooder goes on meanwhile: a reply to a message from the window is timed in the same room.
    const deadline = performance.now() + ECHO_GRACE_MS
    while (pacers.some((p) => p.inFlight.some((m) => m.counted) && p.socket.readyState === WebSocket.OPEN)) {
      if (performance.now() > deadline) break
      await sleep(10)
    }
    // Unanswered within the grace: slower than anything measured, whatever it would have been.
    for (const pacer of pacers) {
      for (const message of pacer.inFlight) {
        if (!message.counted) continue
        latencies.push(Infinity)
        // Its reply, should it come later, is not timed again.
        message.counted = false
      }
    }
    const flooded = flooding === undefined ? undefined : await flooding.stop()
    for (const socket of echoers) socket.removeAllListeners('close')
    return {
      latencies: [...latencies],
      flooderAnswered: flooded?.answered ?? 0,
      flooderEnding: flooded?.ending,
      echoersClosed: closedByServer,
    }
  } finally {
    await closeAll(flooderSocket === undefined ? echoers : [...echoers, flooderSocket])
  }
}

/**
 * Sends echo messages on `socket` as fast as it takes them (while ws has
 * little buffered and fewer than FLOOD_OUTSTANDING are unanswered), reading
 * every reply so it never stalls itself. `answered` counts the replies
 * while `recording()` holds.
 */
function floodFrom(
  socket: WebSocket,
  recording: () => boolean,
): { stop(): Promise<{ answered: number; ending: string | undefined }> } {
  let sent = 0
  let replies = 0
  let answered = 0
  let running = true
  let ending: string | undefined
  socket.on('message', () => {
    replies++
    if (recording()) answered++
  })
  socket.once('close', (code: number) => (ending = `closed by the server with ${String(code)}`))
  const pump = (): void => {
    if (!running || socket.readyState !== WebSocket.OPEN) return
    while (sent - replies < FLOOD_OUTSTANDING && socket.bufferedAmount < 262_144) {
      socket.send(ECHO_MESSAGE)
      sent++
    }
    setImmediate(pump)
  }
  pump()
  return {
    stop: async () => {
      running = false
      const deadline = performance.now() + DRAIN_TIMEOUT_MS
      while (replies < sent && socket.readyState === WebSocket.OPEN && performance.now() < deadline) {
        await sleep(10)
      }
      socket.removeAllListeners('close')
      return { answered, ending }
    },
  }
}
