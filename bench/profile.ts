/**
 * `npm run bench:profile [-- --server package|raw|partyserver] [-- --connections 10] [-- --ms 3000] [-- --top 25]`
 *
 * Samples where one bench server spends its time under a closed-loop echo,
 * with V8's CPU profiler through wrangler dev's inspector, and prints self
 * time by function. It is how the hot-path costs named in bench/RESULTS.md
 * were found: run it for `package` and for `raw` and compare what the
 * package adds.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import type WebSocket from 'ws'
import { closeAll, openMany } from './lib/client.ts'
import { startDevServer } from './lib/devServer.ts'
import { openInspector } from './lib/inspector.ts'
import { selfTimes, type CpuProfile } from './lib/profileSummary.ts'
import { ECHO_MESSAGE } from './lib/scenarios.ts'
import { SERVERS } from './lib/servers.ts'

const { values: flags } = parseArgs({
  options: {
    server: { type: 'string', default: 'package' },
    connections: { type: 'string', default: '10' },
    ms: { type: 'string', default: '3000' },
    top: { type: 'string', default: '25' },
  },
})

const spec = SERVERS.find((server) => server.key === flags.server)
if (spec === undefined) {
  throw new Error(`--server must be one of ${SERVERS.map((s) => s.key).join(', ')}, got ${flags.server}`)
}
/** Every 50 µs: fine enough to see a function that costs a microsecond per message. */
const SAMPLING_INTERVAL_US = 50
const WARMUP_MS = 500

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

// Ctrl-C or a timeout: exit through 'exit', where the dev server's process group is killed.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

const scratch = await mkdtemp(join(os.tmpdir(), 'durable-websocket-profile-'))
const server = await startDevServer(spec.dir, scratch, { direct: false })
try {
  const sockets = await openMany(`${server.wsOrigin}${spec.path('profile')}`, Number(flags.connections))
  const inspector = await openInspector(server.runtimePid)
  await inspector.call('Profiler.enable')
  await inspector.call('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US })
  let running = true
  const replies = echoLoop(sockets, () => running)
  await sleep(WARMUP_MS)
  await inspector.call('Profiler.start')
  await sleep(Number(flags.ms))
  const { profile } = await inspector.call<{ profile: CpuProfile }>('Profiler.stop')
  running = false
  console.log(`${spec.label}: ${String(await replies)} echoes over ${flags.ms} ms plus warm-up`)
  for (const { frame, percent } of selfTimes(profile).slice(0, Number(flags.top))) {
    console.log(`${percent.toFixed(1).padStart(6)} %  ${frame}`)
  }
  inspector.close()
  await closeAll(sockets)
} finally {
  await server.stop()
  await rm(scratch, { recursive: true, force: true })
}
