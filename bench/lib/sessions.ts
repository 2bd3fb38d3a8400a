import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type WebSocket from 'ws'
import { wsText } from '../../tools/wsText.ts'
import { git } from './abuse.ts'
import { SOCKET_OPTIONS, closeSocket, openSocket, welcomed, type ClientKind } from './client.ts'
import { defaultStateStore, startDevServer, type DevServer, type StateStore } from './devServer.ts'
import { cpuBetween, readCpu, type CpuReading } from './proc.ts'
import type { ScenarioResult } from './results.ts'
import { runScenario, type Rounds } from './rounds.ts'
import { answersAlike, broadcast, echo, type Endpoint, type Timing } from './scenarios.ts'
import { SERVERS, type ServerSpec } from './servers.ts'
import { SessionSocket, protocolProblems, type ResumeFrom } from './sessionSocket.ts'

/**
 * The ways the section measures one job: the package with a session client
 * and with a plain one, the floor, and the floor writing one SQLite row per
 * message sent (what any durable log costs at the least), the last also with
 * its storage on disk when the run keeps storage in memory.
 */
export type SessionKey = 'sessions' | 'requests' | 'package' | 'raw' | 'durable' | 'durableDisk'

/** A `wrangler dev` of the section: a bench server, with vars. */
type Instance = 'package' | 'raw' | 'raw-durable' | 'raw-durable-disk'

interface Contender {
  readonly key: SessionKey
  readonly label: string
  readonly instance: Instance
  readonly client: ClientKind
}

const INSTANCES: Record<
  Instance,
  { server: 'package' | 'raw'; vars: Record<string, string>; state?: StateStore }
> = {
  package: { server: 'package', vars: {} },
  raw: { server: 'raw', vars: {} },
  'raw-durable': { server: 'raw', vars: { BENCH_DURABLE: 'on' } },
  'raw-durable-disk': { server: 'raw', vars: { BENCH_DURABLE: 'on' }, state: 'disk' },
}

/** In the order of the first round; later rounds rotate it. */
export const CONTENDERS: readonly Contender[] = [
  {
    key: 'sessions',
    label: 'durable-websocket, sessions on (session client)',
    instance: 'package',
    client: 'session',
  },
  {
    key: 'requests',
    label: 'durable-websocket, request/reply (session client)',
    instance: 'package',
    client: 'request',
  },
  {
    key: 'package',
    label: 'durable-websocket, sessions off (plain client)',
    instance: 'package',
    client: 'plain',
  },
  { key: 'raw', label: 'raw Hibernation API (floor)', instance: 'raw', client: 'plain' },
  {
    key: 'durable',
    label: 'raw + one SQLite row per message sent (durable floor)',
    instance: 'raw-durable',
    client: 'plain',
  },
  {
    key: 'durableDisk',
    label: 'the durable floor, its storage on disk',
    instance: 'raw-durable-disk',
    client: 'plain',
  },
]

/** The contenders of a run: the durable floor on disk only where the rest keep storage in memory. */
function activeContenders(state: StateStore): readonly Contender[] {
  return state === 'memory' ? CONTENDERS : CONTENDERS.filter((c) => c.key !== 'durableDisk')
}

/** Messages the dropped session misses, and the resume replays. */
export const MISSED = 1_000
/** After the cut, time for the object to see the socket gone and suspend its session. */
export const SUSPEND_SETTLE_MS = 300
const REPLAY_TIMEOUT_MS = 30_000

export interface ResumeSample {
  /** From the resume's handshake request to its welcome. */
  welcomeMs: number
  /** From the resume's handshake request to the last replayed frame. */
  replayMs: number
  /** Runtime workerd CPU over the resume, handshake to last frame. */
  workerCpuMs: number
  /** The same for a resume that offered batches (docs/protocol.md §2), after MISSED more broadcasts. */
  batchedReplayMs: number
  batchedWorkerCpuMs: number
  proxyCpuMs: number
  /** The same MISSED broadcasts when they happened, logged, to the one socket still attached. */
  liveMs: number
  liveWorkerCpuMs: number
  /** A new session's handshake in the same room afterwards, for reference: request to welcome. */
  newSessionMs: number
  newSessionWorkerCpuMs: number
  /**
   * The caught-up session cut and resumed at once, RECONNECTS times in a
   * row: it missed nothing. Per cycle (request to welcome, then the cut), wall
   * and worker CPU, the suspend of each cut included.
   */
  emptyResumeMs: number
  emptyResumeWorkerCpuMs: number
  /** A plain client connecting and cut, RECONNECTS times in the same room: per cycle, its close included. */
  plainConnectMs: number
  plainConnectWorkerCpuMs: number
}

export interface SessionResults {
  date: string
  commit: string
  /** Whether src/ had uncommitted changes, so `commit` is not the whole story. */
  srcDirty: boolean
  mode: 'quick' | 'full'
  direct: boolean
  /** Where the dev servers kept their objects' storage, the durable floor on disk aside. */
  state: StateStore
  rounds: number
  timing: Timing
  loadBefore: number[]
  loadAfter: number[]
  durationMs: number
  scenarios: ScenarioResult<SessionKey>[]
  resume: ResumeSample[]
}

export interface SessionOptions {
  quick: boolean
  /**
   * Inside a whole quick run: echo with 10 connections and broadcast only,
   * in one rotation, so `npm run bench -- --quick` stays short.
   */
  brief: boolean
  direct: boolean
  say(line: string): void
}

function spec(key: 'package' | 'raw'): ServerSpec {
  const found = SERVERS.find((s) => s.key === key)
  if (found === undefined) throw new Error(`no bench server ${key}`)
  return found
}

/**
 * Echo and broadcast with sessions on, sessions off and the floor, in
 * interleaved rounds with paired ratios like the main section, then a
 * resume that replays MISSED messages. Two `wrangler dev` of its own: the
 * package server (which both the session and the plain client talk to) and
 * the floor.
 */
export async function runSessions(options: SessionOptions): Promise<SessionResults> {
  const began = performance.now()
  const timing: Timing = options.quick ? { warmupMs: 250, windowMs: 600 } : { warmupMs: 500, windowMs: 1_500 }
  const state = defaultStateStore()
  const contenders = activeContenders(state)
  // Whole rotations: each contender is measured in each place of the order equally often.
  const rounds = contenders.length * (options.brief ? 1 : options.quick ? 2 : 3)
  const resumeRounds = options.brief ? 3 : options.quick ? 5 : 10
  const scenarios = options.brief ? [echo(10), broadcast(100)] : [echo(1), echo(10), broadcast(100)]
  const results: SessionResults = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcDirty: git(['status', '--porcelain', '--', 'src']) !== '',
    mode: options.quick ? 'quick' : 'full',
    direct: options.direct,
    state,
    rounds,
    timing,
    loadBefore: os.loadavg(),
    loadAfter: [],
    durationMs: 0,
    scenarios: [],
    resume: [],
  }
  const scratch = await mkdtemp(join(os.tmpdir(), 'durable-websocket-sessions-'))
  process.once('exit', () => rmSync(scratch, { recursive: true, force: true }))
  const servers = new Map<Instance, DevServer>()
  const instances = [...new Set(contenders.map((c) => c.instance))]
  const starting = instances.map(async (instance) => {
    const { server, vars, state: own } = INSTANCES[instance]
    servers.set(
      instance,
      await startDevServer(spec(server).dir, join(scratch, `dev-${instance}`), {
        direct: options.direct,
        vars,
        state: own ?? state,
      }),
    )
  })
  for (const start of starting) start.catch(() => undefined)
  try {
    options.say('sessions: starting wrangler dev for the package server, the floor and the durable floor')
    await Promise.all(starting)
    const endpoints = contenders.map((contender): Endpoint => {
      const server = servers.get(contender.instance)
      if (server === undefined) throw new Error(`${contender.instance} did not start`)
      const served = spec(INSTANCES[contender.instance].server)
      return {
        key: contender.key,
        runtimePid: server.runtimePid,
        proxyPid: server.proxyPid,
        client: contender.client,
        url: (room) => `${server.wsOrigin}${served.path(room)}`,
      }
    })
    for (const endpoint of endpoints) await sanityCheck(endpoint)
    options.say('sessions: the session client, the plain client and both floors answer alike')
    const plan: Rounds = { rounds, timing, say: (line) => options.say(`sessions: ${line}`) }
    for (const scenario of scenarios) {
      // A request is answered by its reply alone; a broadcast's fan-out is no request's answer.
      const taking = scenario.id.startsWith('echo')
        ? endpoints
        : endpoints.filter((e) => e.key !== 'requests')
      results.scenarios.push(await runScenario<unknown, SessionKey>(scenario, taking, plan, undefined))
      checkProtocol(scenario.id)
    }
    const packageServer = servers.get('package')
    if (packageServer === undefined) throw new Error('package did not start')
    for (let round = 0; round < resumeRounds; round++) {
      const sample = await resumeRound(packageServer, round)
      results.resume.push(sample)
      options.say(
        `sessions: resume ${String(round + 1)}: ${String(MISSED)} replayed in ${sample.replayMs.toFixed(1)} ms (welcome after ${sample.welcomeMs.toFixed(1)} ms), worker CPU ${sample.workerCpuMs.toFixed(1)} ms; live they took ${sample.liveWorkerCpuMs.toFixed(1)} ms CPU`,
      )
    }
    checkProtocol('resume')
  } catch (error) {
    for (const [key, server] of servers)
      console.error(`--- ${key}: wrangler dev said\n${server.output().slice(-3_000)}`)
    throw error
  } finally {
    await Promise.allSettled(starting)
    await Promise.allSettled([...servers.values()].map((server) => server.stop()))
    await rm(scratch, { recursive: true, force: true })
  }
  results.loadAfter = os.loadavg()
  results.durationMs = performance.now() - began
  return results
}

/** The session client must see exactly what a plain client sees, numbers and controls aside. */
async function sanityCheck(endpoint: Endpoint): Promise<void> {
  await answersAlike(endpoint)
  checkProtocol(`the sanity check of ${endpoint.key}`)
}

function checkProtocol(where: string): void {
  if (protocolProblems.length === 0) return
  throw new Error(
    `in ${where}, the server broke the session protocol ${String(protocolProblems.length)} time(s), first: ${protocolProblems[0] ?? ''}`,
  )
}

interface Marks {
  at: number
  worker: CpuReading
  proxy: CpuReading
}

function marks(server: DevServer): Marks {
  return { at: performance.now(), worker: readCpu(server.runtimePid), proxy: readCpu(server.proxyPid) }
}

/**
 * A session client connects, its TCP connection is cut without a close
 * frame, MISSED broadcasts happen (sent by a plain client in the same
 * room), and it comes back with its token and last position: timed from the
 * resume's handshake request to the last replayed frame.
 */
async function resumeRound(server: DevServer, round: number): Promise<ResumeSample> {
  const url = `${server.wsOrigin}${spec('package').path(`resume-r${String(round + 1)}`)}`
  const other = await openSocket(url)
  const away = await openSocket(url, 'session')
  let back: SessionSocket | undefined
  try {
    const token = away.welcome?.token
    if (token === undefined) throw new Error('the session socket has no welcome')
    const from = { token, last: away.last }
    await cut(away)
    await sleep(SUSPEND_SETTLE_MS)

    const liveStart = marks(server)
    await receive(other, MISSED, () => other.send(JSON.stringify({ broadcast: MISSED })))
    const liveEnd = marks(server)

    // One frame a message, as to a client that does not read batches.
    const single = await timedResume(server, url, from, false, (socket) => (back = socket))
    const { start, end } = single
    const welcomedAt = single.socket.welcomedAt
    if (welcomedAt === undefined) throw new Error(`the resume in round ${String(round + 1)} had no welcome`)

    const fresh = marks(server)
    const other2 = new SessionSocket(url, SOCKET_OPTIONS)
    other2.on('error', () => undefined)
    await welcomed(other2, url)
    const freshEnd = marks(server)
    const freshAt = other2.welcomedAt ?? freshEnd.at
    await closeSocket(other2)

    // The same again to a client that reads batches, as durable-websocket/client does.
    await cut(single.socket)
    back = undefined
    await sleep(SUSPEND_SETTLE_MS)
    await receive(other, MISSED, () => other.send(JSON.stringify({ broadcast: MISSED })))
    const batched = await timedResume(server, url, single.from, true, (socket) => (back = socket))

    // The resumed session, caught up, is cut and comes back at once, again and again: resumes with
    // nothing to replay, against as many plain clients cut and connecting anew in the same room.
    const caughtUp = batched.from
    await cut(batched.socket)
    back = undefined
    await sleep(SUSPEND_SETTLE_MS)
    const empty = await reconnects(server, url, caughtUp, round)
    const plain = await reconnects(server, url, undefined, round)

    return {
      welcomeMs: welcomedAt - start.at,
      replayMs: end.at - start.at,
      workerCpuMs: cpuBetween(start.worker, end.worker).ms,
      batchedReplayMs: batched.end.at - batched.start.at,
      batchedWorkerCpuMs: cpuBetween(batched.start.worker, batched.end.worker).ms,
      proxyCpuMs: cpuBetween(start.proxy, end.proxy).ms,
      liveMs: liveEnd.at - liveStart.at,
      liveWorkerCpuMs: cpuBetween(liveStart.worker, liveEnd.worker).ms,
      newSessionMs: freshAt - fresh.at,
      newSessionWorkerCpuMs: cpuBetween(fresh.worker, freshEnd.worker).ms,
      emptyResumeMs: empty.ms,
      emptyResumeWorkerCpuMs: empty.workerCpuMs,
      plainConnectMs: plain.ms,
      plainConnectWorkerCpuMs: plain.workerCpuMs,
    }
  } finally {
    await closeSocket(other)
    if (back !== undefined) await closeSocket(back)
  }
}

/**
 * A resume from `from` (offering batches or not), timed from its handshake
 * request to the MISSED-th replayed frame; `opened` gets the socket at once,
 * so the caller closes it whatever happens. Returns the marks around it and
 * where the session stands after it, for its next resume.
 */
async function timedResume(
  server: DevServer,
  url: string,
  from: ResumeFrom,
  batches: boolean,
  opened: (socket: SessionSocket) => void,
): Promise<{ socket: SessionSocket; start: Marks; end: Marks; from: ResumeFrom }> {
  const start = marks(server)
  const socket = new SessionSocket(url, SOCKET_OPTIONS, { resume: from, batches })
  opened(socket)
  socket.on('error', () => undefined)
  await receive(socket, MISSED, () => undefined)
  const end = marks(server)
  if (socket.welcome?.resumed !== true)
    throw new Error(`a resume ${batches ? 'offering' : 'not offering'} batches was not resumed`)
  return { socket, start, end, from: { token: socket.welcome.token, last: socket.last } }
}

/** Reconnects per round for the empty-resume and plain-connect figures: one is too short to read a process's CPU. */
export const RECONNECTS = 100

/**
 * A client connects and is cut, RECONNECTS times in a row, one after the
 * other: with `from`, a session client that resumes where it was each time
 * (it misses nothing), else a plain client. Returns wall and worker CPU per
 * cycle, over the whole loop and the settling after its last cut, so what
 * a connect or a close leaves for later is counted on both sides alike.
 */
async function reconnects(
  server: DevServer,
  url: string,
  from: ResumeFrom | undefined,
  round: number,
): Promise<{ ms: number; workerCpuMs: number }> {
  let resumeFrom = from
  const start = marks(server)
  for (let i = 0; i < RECONNECTS; i++) {
    if (resumeFrom === undefined) {
      await cut(await openSocket(url))
      continue
    }
    const socket = new SessionSocket(url, SOCKET_OPTIONS, { resume: resumeFrom })
    socket.on('error', () => undefined)
    await welcomed(socket, url)
    const welcome = socket.welcome
    if (welcome?.resumed !== true)
      throw new Error(`an empty resume in round ${String(round + 1)} was not resumed`)
    resumeFrom = { token: welcome.token, last: socket.last }
    await cut(socket)
  }
  const loopEnd = performance.now()
  await sleep(SUSPEND_SETTLE_MS)
  const end = marks(server)
  return {
    ms: (loopEnd - start.at) / RECONNECTS,
    workerCpuMs: cpuBetween(start.worker, end.worker).ms / RECONNECTS,
  }
}

/** Drops the TCP connection without a close frame, as a network cut does. */
function cut(socket: WebSocket): Promise<void> {
  return new Promise((resolveCut) => {
    socket.once('close', () => resolveCut())
    socket.terminate()
  })
}

/**
 * Resolves once `socket` received `count` messages `{"seq":0}` … in order
 * after `start` ran; rejects on a message out of order or after
 * REPLAY_TIMEOUT_MS.
 */
function receive(socket: WebSocket, count: number, start: () => void): Promise<void> {
  return new Promise((resolveAll, reject) => {
    let seen = 0
    const finish = (error?: Error): void => {
      clearTimeout(timer)
      socket.off('message', onMessage)
      if (error === undefined) resolveAll()
      else reject(error)
    }
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `only ${String(seen)} of ${String(count)} messages after ${String(REPLAY_TIMEOUT_MS)} ms`,
          ),
        ),
      REPLAY_TIMEOUT_MS,
    )
    const onMessage = (data: WebSocket.RawData): void => {
      const expected = `{"seq":${String(seen)}}`
      if (wsText(data) !== expected) {
        finish(new Error(`message ${String(seen + 1)} was ${wsText(data)}, not ${expected}`))
        return
      }
      if (++seen === count) finish()
    }
    socket.on('message', onMessage)
    start()
  })
}
