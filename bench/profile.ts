/**
 * `npm run bench:profile [-- --server package|raw|partyserver] [-- --durable] [-- --client plain|session] [-- --broadcast | --reconnect] [-- --connections 10] [-- --ms 3000] [-- --top 25] [-- --save profile.cpuprofile]`
 *
 * Samples where one bench server spends its time under a closed-loop echo
 * (or, with `--broadcast`, broadcasts to all of `--connections` sockets;
 * with `--reconnect`, one client cut and connecting again in a loop: a
 * session client resumes what it had, having missed nothing, a plain one
 * connects anew),
 * with V8's CPU profiler through wrangler dev's inspector, and prints self
 * time by function. It is how the hot-path costs named in bench/RESULTS.md
 * were found: run it for `package` and for `raw` and compare what the
 * package adds; `--client session` speaks the session protocol
 * (bench/lib/sessionSocket.ts), to see what sessions add; `--durable`
 * runs the raw floor as the durable floor (one SQLite row per message sent,
 * `BENCH_DURABLE=on`), what a session echo is held against.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { once } from 'node:events'
import WebSocket from 'ws'
import { closeAll, openMany, type ClientKind } from './lib/client.ts'
import { startDevServer } from './lib/devServer.ts'
import { openInspector } from './lib/inspector.ts'
import { selfTimes, type CpuProfile } from './lib/profileSummary.ts'
import { BROADCAST_TRIGGER, ECHO_MESSAGE } from './lib/scenarios.ts'
import { SERVERS } from './lib/servers.ts'
import { SessionSocket, type ResumeFrom } from './lib/sessionSocket.ts'

const { values: flags } = parseArgs({
  options: {
    server: { type: 'string', default: 'package' },
    client: { type: 'string', default: 'plain' },
    broadcast: { type: 'boolean', default: false },
    reconnect: { type: 'boolean', default: false },
    durable: { type: 'boolean', default: false },
    connections: { type: 'string', default: '10' },
    ms: { type: 'string', default: '3000' },
    top: { type: 'string', default: '25' },
    save: { type: 'string' },
  },
})

const spec = SERVERS.find((server) => server.key === flags.server)
if (spec === undefined) {
  throw new Error(`--server must be one of ${SERVERS.map((s) => s.key).join(', ')}, got ${flags.server}`)
}
if (flags.client !== 'plain' && flags.client !== 'session') {
  throw new Error(`--client must be plain or session, got ${flags.client}`)
}
const client: ClientKind = flags.client
/** Every 50 µs: fine enough to see a function that costs a microsecond per message. */
const SAMPLING_INTERVAL_US = 50
const WARMUP_MS = 500

/**
 * Keeps one broadcast in flight: the first socket triggers the next once
 * every socket has its copy. Resolves with the copies counted.
 */
function broadcastLoop(sockets: readonly WebSocket[], running: () => boolean): Promise<number> {
  const [sender] = sockets
  if (sender === undefined) return Promise.resolve(0)
  let copies = 0
  let remaining = sockets.length
  return new Promise((done) => {
    const onCopy = (): void => {
      copies++
      if (--remaining > 0) return
      if (!running()) {
        for (const socket of sockets) socket.off('message', onCopy)
        done(copies)
        return
      }
      remaining = sockets.length
      sender.send(BROADCAST_TRIGGER)
    }
    for (const socket of sockets) socket.on('message', onCopy)
    sender.send(BROADCAST_TRIGGER)
  })
}

/** Keeps one echo in flight per socket until `running` turns false; resolves with the replies counted. */
function echoLoop(sockets: readonly WebSocket[], running: () => boolean): Promise<number> {
  let replies = 0
  const loops = sockets.map(
    (socket) =>
      new Promise<void>((done) => {
        const onReply = (): void => {
          replies++
          if (running()) {
            socket.send(ECHO_MESSAGE)
            return
          }
          socket.off('message', onReply)
          done()
        }
        socket.on('message', onReply)
        socket.send(ECHO_MESSAGE)
      }),
  )
  return Promise.all(loops).then(() => replies)
}

/**
 * Cuts one socket (no close frame, as a dropped network does) and connects
 * again until `running` turns false: a session client offers to resume
 * where it was, so each round is a resume that missed nothing. Resolves
 * with the connects counted.
 */
async function reconnectLoop(url: string, running: () => boolean): Promise<number> {
  let connects = 0
  let from: ResumeFrom | undefined
  while (running()) {
    if (client === 'session') {
      const socket = new SessionSocket(url, {}, { resume: from })
      const welcome = await socket.welcomed
      if (from !== undefined && !welcome.resumed) throw new Error('the resume was refused')
      from = { token: welcome.token, last: welcome.last }
      socket.terminate()
    } else {
      const socket = new WebSocket(url)
      await once(socket, 'open')
      socket.terminate()
    }
    connects++
  }
  return connects
}

// Ctrl-C or a timeout: exit through 'exit', where the dev server's process group is killed.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

const scratch = await mkdtemp(join(os.tmpdir(), 'durable-websocket-profile-'))
const server = await startDevServer(spec.dir, scratch, {
  direct: false,
  ...(flags.durable ? { vars: { BENCH_DURABLE: 'on' } } : {}),
})
try {
  const url = `${server.wsOrigin}${spec.path('profile')}`
  const sockets = flags.reconnect ? [] : await openMany(url, Number(flags.connections), client)
  const inspector = await openInspector(server.runtimePid)
  await inspector.call('Profiler.enable')
  await inspector.call('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US })
  let running = true
  const replies = flags.reconnect
    ? reconnectLoop(url, () => running)
    : (flags.broadcast ? broadcastLoop : echoLoop)(sockets, () => running)
  await sleep(WARMUP_MS)
  await inspector.call('Profiler.start')
  await sleep(Number(flags.ms))
  const { profile } = await inspector.call<{ profile: CpuProfile }>('Profiler.stop')
  running = false
  console.log(
    `${spec.label}, ${client} client: ${String(await replies)} ${flags.reconnect ? 'connects' : flags.broadcast ? 'broadcast copies' : 'echoes'} over ${flags.ms} ms plus warm-up`,
  )
  for (const { frame, percent } of selfTimes(profile).slice(0, Number(flags.top))) {
    console.log(`${percent.toFixed(1).padStart(6)} %  ${frame}`)
  }
  // The whole profile, for DevTools or for who called a native frame such as SqlStorage's `exec`.
  if (flags.save !== undefined) await writeFile(flags.save, JSON.stringify(profile))
  inspector.close()
  await closeAll(sockets)
} finally {
  await server.stop()
  await rm(scratch, { recursive: true, force: true })
}
