/**
 * `npm run bench [-- --quick] [-- --control | --no-control] [-- --direct] [-- --heartbeat] [-- --state memory|disk] [-- --sessions | --no-sessions] [-- --abuse | --no-abuse] [-- --storm [--storm-sizes 100,300] [--storm-restart object|runtime] [--storm-load busy|quiet] [--storm-repeat 3] [--storm-proxy] | --no-storm] [-- --presence [--presence-members 100]] [-- --shards [--shards-clients 400]] [-- --note "…"] [-- --out file]`
 *
 * Measures this package, a hand-written Hibernation-API object (the floor)
 * and partyserver doing the same job under `wrangler dev`, interleaved, then
 * what durable sessions cost (bench/lib/sessions.ts: echo and broadcast with
 * sessions on, off and the floor, and a resume), then what abuse costs
 * (bench/lib/abuse.ts: a stalled reader, a deflate bomb, a flooding client),
 * and writes the tables with the machine and the method to bench/RESULTS.md.
 * `--sessions` or `--abuse` runs only that section and writes
 * bench/RESULTS-sessions.md or bench/RESULTS-abuse.md; `--no-sessions` and
 * `--no-abuse` leave them out. `--storm` runs only the deploy storm
 * (bench/lib/storm.ts: 1,000 and 5,000 session clients in one busy room,
 * the room's object reset as a deploy does it, then the runtime SIGKILLed
 * and restarted; `--quick`: 200 and 1,000; `--storm-sizes 100,300` for a
 * trial; `--storm-restart object` or `runtime` for one of the two, `--storm-load busy` or `quiet` likewise; `--storm-repeat N` runs of each (3 in a full run, 1 quick); the clients dial the runtime workerd's own port, `--storm-proxy` through wrangler's proxy) and writes bench/RESULTS-storm.md. It
 * is slow and opens thousands of sockets, so the whole run leaves it out
 * (`--no-storm` is the default). `--presence` runs only the presence section
 * (bench/lib/presence.ts: 1,000 session sockets of the package's server with
 * presence on, each its own member, and a join, an update and a leave timed
 * until all of them have the diff, against a broadcast to the same sockets;
 * `--quick`: 200; `--presence-members 100` for a trial) and writes
 * bench/RESULTS-presence.md; the whole run leaves it out too. `--shards`
 * runs only the sharded-room section (bench/lib/shards.ts: 1,000 sockets in
 * an ordinary room against 1,000 over four leaves, worker CPU per delivery,
 * calls between the objects per message, the root's ceiling; `--quick`: 400;
 * `--shards-clients 200` for a trial) and writes bench/RESULTS-shards.md;
 * the whole run leaves it out. It reports; it never fails on a number.
 */
import { existsSync, rmSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import type WebSocket from 'ws'
import { runAbuse } from './lib/abuse.ts'
import { renderAbuse } from './lib/abuseReport.ts'
import { libraryBundle, logicOnlyBundle, workerBundle, type BundleSize } from './lib/bundleSize.ts'
import { closeAll, closeSocket, request } from './lib/client.ts'
import { REPO_ROOT, defaultStateStore, startDevServer, type DevServer } from './lib/devServer.ts'
import { spawnGroup, type Group } from './lib/group.ts'
import { readCpu, readRssBytes } from './lib/proc.ts'
import { runPresence } from './lib/presence.ts'
import { renderPresence } from './lib/presenceReport.ts'
import { renderResults } from './lib/report.ts'
import type { Machine, Results, RunSettings, WakeSample } from './lib/results.ts'
import { runScenario, type Rounds } from './lib/rounds.ts'
import {
  ECHO_MESSAGE,
  answersAlike,
  broadcast,
  connectClose,
  echo,
  type Endpoint,
  type Scenario,
  type Timing,
} from './lib/scenarios.ts'
import { CONTROL, SERVERS, describeHost, rotate, version, type ServerKey } from './lib/servers.ts'
import { runSessions } from './lib/sessions.ts'
import { renderSessions } from './lib/sessionsReport.ts'
import { runShards } from './lib/shards.ts'
import { renderShards } from './lib/shardsReport.ts'
import { RESTARTS, STORM_LOADS, runStorm, type Restart, type StormLoad } from './lib/storm.ts'
import { renderStorm } from './lib/stormReport.ts'

const { values: flags } = parseArgs({
  allowNegative: true,
  options: {
    quick: { type: 'boolean', default: false },
    direct: { type: 'boolean', default: false },
    heartbeat: { type: 'boolean', default: false },
    control: { type: 'boolean' },
    abuse: { type: 'boolean' },
    sessions: { type: 'boolean' },
    storm: { type: 'boolean' },
    'storm-sizes': { type: 'string' },
    'storm-restart': { type: 'string' },
    'storm-load': { type: 'string' },
    'storm-repeat': { type: 'string' },
    'storm-proxy': { type: 'boolean' },
    presence: { type: 'boolean' },
    'presence-members': { type: 'string' },
    shards: { type: 'boolean' },
    'shards-clients': { type: 'string' },
    note: { type: 'string' },
    out: { type: 'string' },
    state: { type: 'string' },
  },
})
if (flags.state !== undefined) {
  if (flags.state !== 'memory' && flags.state !== 'disk')
    throw new Error(`--state must be memory or disk, got ${flags.state}`)
  if (flags.state === 'memory' && !existsSync('/dev/shm'))
    throw new Error('--state memory needs /dev/shm, which this machine lacks')
  // Read by every dev server the run starts, the sections' own included (bench/lib/devServer.ts).
  process.env.BENCH_STATE = flags.state
}
const stormSizes = flags['storm-sizes']?.split(',').map((size) => {
  const n = Number(size.trim())
  if (!Number.isInteger(n) || n < 1) throw new Error(`--storm-sizes takes whole numbers, got ${size}`)
  return n
})
const stormLoad = flags['storm-load']
if (stormLoad !== undefined && !STORM_LOADS.includes(stormLoad as StormLoad))
  throw new Error(`--storm-load takes ${STORM_LOADS.join(' or ')}, got ${stormLoad}`)
const stormRepeat = flags['storm-repeat'] === undefined ? undefined : Number(flags['storm-repeat'])
if (stormRepeat !== undefined && !(Number.isInteger(stormRepeat) && stormRepeat >= 1))
  throw new Error(`--storm-repeat takes a whole number from 1, got ${String(flags['storm-repeat'])}`)
const stormRestart = flags['storm-restart']
if (stormRestart !== undefined && !RESTARTS.includes(stormRestart as Restart))
  throw new Error(`--storm-restart takes ${RESTARTS.join(' or ')}, got ${stormRestart}`)
const presenceMembers =
  flags['presence-members'] === undefined ? undefined : Number(flags['presence-members'])
if (presenceMembers !== undefined && (!Number.isInteger(presenceMembers) || presenceMembers < 1))
  throw new Error(`--presence-members takes a whole number, got ${String(flags['presence-members'])}`)
const shardsClients = flags['shards-clients'] === undefined ? undefined : Number(flags['shards-clients'])
if (shardsClients !== undefined && (!Number.isInteger(shardsClients) || shardsClients < 4))
  throw new Error(
    `--shards-clients takes a whole number of at least 4, got ${String(flags['shards-clients'])}`,
  )
const out =
  flags.out ??
  join(
    REPO_ROOT,
    flags.shards === true
      ? 'bench/RESULTS-shards.md'
      : flags.presence === true
        ? 'bench/RESULTS-presence.md'
        : flags.storm === true
          ? 'bench/RESULTS-storm.md'
          : flags.sessions === true
            ? 'bench/RESULTS-sessions.md'
            : flags.abuse === true
              ? 'bench/RESULTS-abuse.md'
              : 'bench/RESULTS.md',
  )

/** wrangler dev evicts an object about 10 s after its last event. */
const IDLE_MS = 11_000
const WAKE_SOCKETS = 1_000

// The A/A control costs a third more time: on by default only in the full run.
const control = flags.control ?? !flags.quick
const specs = control ? [...SERVERS, CONTROL] : [...SERVERS]

/**
 * At least `count` rounds, rounded up to whole rotations: each server is
 * then measured in each place of the order equally often.
 */
function wholeRotations(count: number): number {
  return specs.length * Math.ceil(count / specs.length)
}

// Every ratio pairs a server with the floor measured seconds away in the same round. Many short
// rounds rather than a few long ones keep each pair close in time, let a burst of load elsewhere
// spoil one round rather than the run, and give enough ratios for a median and its spread.
const settings: RunSettings = {
  mode: flags.quick ? 'quick' : 'full',
  direct: flags.direct,
  heartbeat: flags.heartbeat,
  state: defaultStateStore(),
  control,
  rounds: wholeRotations(flags.quick ? 6 : 16),
  warmupMs: flags.quick ? 250 : 500,
  windowMs: flags.quick ? 600 : 1_500,
  // Each wake-up round waits out the idle eviction first (11 s).
  wakeRounds: flags.quick ? 1 : wholeRotations(8),
  idleMs: IDLE_MS,
  note: flags.note,
  durationMs: 0,
}
const timing: Timing = { warmupMs: settings.warmupMs, windowMs: settings.windowMs }

const began = performance.now()
function say(line: string): void {
  console.log(`[bench ${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s] ${line}`)
}

// Ctrl-C: exit through 'exit', where every process group we started is killed.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

function describeMachine(loadBefore: number[]): Machine {
  return {
    ...describeHost(),
    date: new Date().toISOString(),
    loadBefore,
    loadAfter: os.loadavg(),
  }
}

async function bundleSizes(scratch: string): Promise<BundleSize[]> {
  const workers = []
  for (const server of SERVERS) {
    workers.push(
      await workerBundle(`${server.label} worker`, server.dir, join(scratch, `bundle-${server.key}`)),
    )
  }
  const server = ['cloudflare:workers']
  const typicalImports = { imports: ['websocket', 'WebSocketObject'], from: './src/index.ts' }
  return [
    ...workers,
    await libraryBundle(
      'durable-websocket alone (src/index.ts, itty-router left out)',
      { file: 'src/index.ts' },
      ['itty-router', ...server],
    ),
    await libraryBundle(
      'durable-websocket with itty-router (src/index.ts)',
      { file: 'src/index.ts' },
      server,
    ),
    await libraryBundle(
      'durable-websocket as a worker imports it (websocket, WebSocketObject; itty-router left out)',
      typicalImports,
      ['itty-router', ...server],
    ),
    await logicOnlyBundle('the same, its logic alone (diagnostic: message texts cut)', typicalImports, [
      'itty-router',
      ...server,
    ]),
    await libraryBundle(
      `partyserver ${version('partyserver')} alone (with nanoid)`,
      { file: 'partyserver' },
      server,
    ),
  ]
}

async function health(origin: string): Promise<number> {
  const response = await fetch(`${origin}/health`)
  const body = (await response.json()) as { constructed: number }
  return body.constructed
}

/** The three must answer alike, and count their objects, before any number means anything. */
async function sanityCheck(endpoint: Endpoint, origin: string): Promise<void> {
  await answersAlike(endpoint)
  if (typeof (await health(origin)) !== 'number') throw new Error(`${endpoint.key}: /health is not a count`)
}

function mib(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1)
}

const lastActivity = new Map<string, number>()
const plan: Rounds = {
  rounds: settings.rounds,
  timing,
  say,
  measured: (key) => lastActivity.set(key, Date.now()),
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg()
  say(
    `${settings.mode} run: ${String(settings.rounds)} interleaved rounds of ${String(timing.windowMs)} ms after ${String(timing.warmupMs)} ms warm-up; load average ${loadBefore.map((n) => n.toFixed(2)).join(' ')}`,
  )
  say(
    'X_LOCAL_OBSERVABILITY=false: wrangler’s local tracing is off (it triples the worker’s CPU per message)',
  )
  const scratch = await mkdtemp(join(os.tmpdir(), 'durable-websocket-bench-'))
  // On Ctrl-C the servers are killed from group.ts's exit hook, which runs first; this one then
  // removes their state.
  process.once('exit', () => rmSync(scratch, { recursive: true, force: true }))
  const servers = new Map<ServerKey, DevServer>()
  let loopbackGroup: Group | undefined
  let starting: Promise<void>[] = []
  const results: Results = {
    settings,
    machine: describeMachine(loadBefore),
    scenarios: [],
    wake: {},
    memory: {},
    bundles: [],
  }
  try {
    say(
      `starting ${String(specs.length)} wrangler dev servers and the loopback server; building the bundles for their sizes`,
    )
    starting = specs.map(async (spec) => {
      servers.set(
        spec.key,
        await startDevServer(spec.dir, join(scratch, `dev-${spec.key}`), {
          direct: settings.direct,
          vars: settings.heartbeat ? { BENCH_HEARTBEAT: 'on' } : {},
        }),
      )
    })
    // A failed start surfaces at the Promise.all below, not as an unhandled rejection meanwhile.
    for (const start of starting) start.catch(() => undefined)
    loopbackGroup = spawnGroup(process.execPath, [join(REPO_ROOT, 'bench/lib/loopbackServer.ts')], {
      cwd: REPO_ROOT,
      env: process.env,
    })
    const loopbackPort = await loopbackGroup.waitFor(/listening on (\d+)/)
    results.bundles = await bundleSizes(scratch)
    await Promise.all(starting)
    for (const bundle of results.bundles) {
      say(`bundle ${bundle.label}: ${String(bundle.gzipBytes)} B gzipped`)
    }

    const endpoints: Endpoint[] = specs.map((spec) => {
      const server = servers.get(spec.key)
      if (server === undefined) throw new Error(`${spec.key} did not start`)
      return {
        key: spec.key,
        runtimePid: server.runtimePid,
        proxyPid: server.proxyPid,
        url: (room) => `${server.wsOrigin}${spec.path(room)}`,
      }
    })
    const originOf = (key: string): string => {
      const server = servers.get(key as ServerKey)
      if (server === undefined) throw new Error(`no server ${key}`)
      return server.origin
    }
    const loopback: Endpoint = {
      key: 'loopback',
      runtimePid: loopbackGroup.pid,
      proxyPid: undefined,
      url: (room) => `ws://127.0.0.1:${loopbackPort}/${room}`,
    }
    for (const endpoint of endpoints) {
      await sanityCheck(endpoint, originOf(endpoint.key))
      say(
        `${endpoint.key}: runtime workerd ${String(endpoint.runtimePid)}, proxy workerd ${String(endpoint.proxyPid)}, answers alike`,
      )
    }

    const scenarios = [echo(1), echo(10), echo(100), connectClose(10), broadcast(100)]
    for (const scenario of scenarios) {
      results.scenarios.push(await runScenario(scenario as Scenario<unknown>, endpoints, plan, loopback))
    }

    // 1,000 sockets per server: their memory, broadcast to all of them, then the wake-up.
    const fanout = broadcast(WAKE_SOCKETS)
    const states = new Map<string, { sockets: WebSocket[] }>()
    for (const endpoint of endpoints) {
      const beforeBytes = readRssBytes(endpoint.runtimePid)
      states.set(endpoint.key, await fanout.setup(endpoint))
      await sleep(1_000)
      const openBytes = readRssBytes(endpoint.runtimePid)
      results.memory[endpoint.key as ServerKey] = {
        sockets: WAKE_SOCKETS,
        beforeBytes,
        openBytes,
        idleBytes: undefined,
      }
      lastActivity.set(endpoint.key, Date.now())
      say(`${endpoint.key}: ${String(WAKE_SOCKETS)} sockets open, RSS +${mib(openBytes - beforeBytes)} MiB`)
    }
    states.set(loopback.key, await fanout.setup(loopback))
    // These 1,000 sockets stay open through every round (opening them takes seconds), in the room
    // whose memory was just read and whose wake-up comes next. Its object handles a few dozen
    // incoming messages a second, too few for its CPU per message to creep up.
    results.scenarios.push(await runScenario(fanout, endpoints, plan, loopback, states))
    // One loopback socket stays open: a round trip on it right before each wake-up warms the
    // client's own path after the idle wait, so the first server measured does not pay for that.
    const [warmer, ...otherLoopbackSockets] = states.get(loopback.key)?.sockets ?? []
    await closeAll(otherLoopbackSockets)

    for (let round = 0; round < settings.wakeRounds; round++) {
      const quietSince = Math.max(...endpoints.map((endpoint) => lastActivity.get(endpoint.key) ?? 0))
      const wait = quietSince + IDLE_MS - Date.now()
      say(
        `wake-up round ${String(round + 1)}: waiting ${(wait / 1000).toFixed(1)} s for every object to hibernate`,
      )
      if (wait > 0) await sleep(wait)
      for (const endpoint of rotate(endpoints, round)) {
        const memory = results.memory[endpoint.key as ServerKey]
        if (round === 0 && memory !== undefined) memory.idleBytes = readRssBytes(endpoint.runtimePid)
        if (warmer !== undefined) await request(warmer, ECHO_MESSAGE)
        const sample = await wake(endpoint, originOf(endpoint.key), states.get(endpoint.key)?.sockets ?? [])
        ;(results.wake[endpoint.key as ServerKey] ??= []).push(sample)
        lastActivity.set(endpoint.key, Date.now())
        say(
          `wake ${endpoint.key}: ${sample.latencyMs.toFixed(1)} ms, ${sample.cpuMs.toFixed(1)} ms CPU, ${sample.hibernated ? 'was hibernated' : 'was NOT hibernated'}`,
        )
      }
    }
    for (const endpoint of endpoints) await closeAll(states.get(endpoint.key)?.sockets ?? [])
    if (warmer !== undefined) await closeSocket(warmer)
  } catch (error) {
    for (const [key, server] of servers)
      console.error(`--- ${key}: wrangler dev said\n${server.output().slice(-3_000)}`)
    throw error
  } finally {
    say('stopping the servers')
    await Promise.allSettled(starting)
    const stopping = [...servers.values()].map((server) => server.stop())
    if (loopbackGroup !== undefined) stopping.push(loopbackGroup.stop())
    const stopped = await Promise.allSettled(stopping)
    for (const outcome of stopped) {
      if (outcome.status === 'rejected') console.error('a server would not stop:', outcome.reason)
    }
    await rm(scratch, { recursive: true, force: true })
  }
  const sessions =
    flags.sessions === false
      ? undefined
      : await runSessions({ quick: flags.quick, brief: flags.quick, direct: settings.direct, say })
  const abuse = flags.abuse === false ? undefined : await runAbuse({ direct: settings.direct, say })
  results.machine.loadAfter = os.loadavg()
  settings.durationMs = performance.now() - began
  const markdown =
    renderResults(results) +
    (sessions === undefined ? '' : `\n${renderSessions(sessions, false)}`) +
    (abuse === undefined ? '' : `\n${renderAbuse(abuse, false)}`)
  await writeFile(out, markdown)
  console.log(`\n${markdown}`)
  say(`wrote ${out}`)
}

/** `--abuse`: the abuse section alone, in a document of its own. */
async function abuseOnly(): Promise<void> {
  say('abuse section only: a stalled reader, a deflate bomb and a flooder, each on a wrangler dev of its own')
  const markdown = renderAbuse(await runAbuse({ direct: settings.direct, say }), true)
  await writeFile(out, markdown)
  console.log(`\n${markdown}`)
  say(`wrote ${out}`)
}

/** `--storm`: the deploy storm alone, in a document of its own. */
async function stormOnly(): Promise<void> {
  say(
    `deploy storm only (${settings.mode}): session clients in one busy room, its object reset, then the runtime SIGKILLed and restarted; load average ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')}`,
  )
  const markdown = renderStorm(
    await runStorm({
      quick: flags.quick,
      ...(stormSizes === undefined ? {} : { sizes: stormSizes }),
      ...(stormRestart === undefined ? {} : { restarts: [stormRestart as Restart] }),
      ...(stormLoad === undefined ? {} : { loads: [stormLoad as StormLoad] }),
      ...(stormRepeat === undefined ? {} : { repeat: stormRepeat }),
      proxy: flags['storm-proxy'] === true,
      say,
    }),
  )
  await writeFile(out, markdown)
  console.log(`\n${markdown}`)
  say(`wrote ${out}`)
}

/** `--presence`: the presence section alone, in a document of its own. */
async function presenceOnly(): Promise<void> {
  say(
    `presence only (${settings.mode}): a join, an update and a leave with every member watching, against a broadcast; load average ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')}`,
  )
  const markdown = renderPresence(
    await runPresence({
      quick: flags.quick,
      direct: settings.direct,
      ...(presenceMembers === undefined ? {} : { members: presenceMembers }),
      say,
    }),
  )
  await writeFile(out, markdown)
  console.log(`\n${markdown}`)
  say(`wrote ${out}`)
}

/** `--shards`: the sharded-room section alone, in a document of its own. */
async function shardsOnly(): Promise<void> {
  say(
    `sharded rooms only (${settings.mode}): an ordinary room against four leaves, per delivery, per call and at the root's ceiling; load average ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')}`,
  )
  const markdown = renderShards(
    await runShards({
      quick: flags.quick,
      direct: settings.direct,
      ...(shardsClients === undefined ? {} : { clients: shardsClients }),
      say,
    }),
  )
  await writeFile(out, markdown)
  console.log(`\n${markdown}`)
  say(`wrote ${out}`)
}

/** `--sessions`: the sessions section alone, in a document of its own. */
async function sessionsOnly(): Promise<void> {
  say(
    `sessions section only (${settings.mode}): echo and broadcast with sessions on, off and the floor, then a resume; load average ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')}`,
  )
  const markdown = renderSessions(
    await runSessions({ quick: flags.quick, brief: false, direct: settings.direct, say }),
    true,
  )
  await writeFile(out, markdown)
  console.log(`\n${markdown}`)
  say(`wrote ${out}`)
}

/** The first message after the idle wait, timed from send to reply, with the runtime's CPU over that span. */
async function wake(endpoint: Endpoint, origin: string, sockets: readonly WebSocket[]): Promise<WakeSample> {
  const socket = sockets[sockets.length - 1]
  if (socket === undefined) throw new Error(`no socket to wake ${endpoint.key} with`)
  const constructedBefore = await health(origin)
  const cpuBefore = readCpu(endpoint.runtimePid)
  const startedAt = performance.now()
  await request(socket, ECHO_MESSAGE)
  const latencyMs = performance.now() - startedAt
  const cpuAfter = readCpu(endpoint.runtimePid)
  const constructedAfter = await health(origin)
  const cpuMs =
    cpuBefore.schedMs !== undefined && cpuAfter.schedMs !== undefined
      ? cpuAfter.schedMs - cpuBefore.schedMs
      : cpuAfter.statMs - cpuBefore.statMs
  return { latencyMs, cpuMs, hibernated: constructedAfter > constructedBefore }
}

await (flags.shards === true
  ? shardsOnly()
  : flags.presence === true
    ? presenceOnly()
    : flags.storm === true
      ? stormOnly()
      : flags.sessions === true
        ? sessionsOnly()
        : flags.abuse === true
          ? abuseOnly()
          : main())
