import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import { connect, type Client, type WebSocketConstructor } from '../../src/client/index.ts'
import { REPO_ROOT, startDevServer } from './devServer.ts'
import { cpuIfRunning, cpuPercentSince } from './proc.ts'
import { PADDING_BYTES, STREAM_CPU_MS, STREAM_MS, startStream, type StormLoad } from './stormStream.ts'
import { until } from './watch.ts'

/**
 * The same storm on the bench's floor: a hand-written Hibernation-API object
 * (bench/servers/raw, writing one SQLite row per frame it sends, as the
 * durable floor does) with N plain connections of the package's own client
 * and the same load, reset the way the storm resets the room, and the clients
 * back with their default backoff. What it takes is what the runtime and the
 * load take with no session at all: the reset's teardown, an accept per
 * client, and the stream beside them.
 */
export interface FloorStorm {
  clients: number
  load: StormLoad
  /** From the first dial to every connection open. */
  openMs: number
  /** The reset call's own time, as *down* in a storm. */
  resetMs: number
  /** From the reset's request to every client seeing its connection closed. */
  closedMs: number
  /** From the reset's request to every client open again. */
  backMs: number
  /** The runtime workerd's CPU in % of one core over the end of the stream: the load's share of the thread. */
  streamCpuPercent: number | undefined
}

/** The bench's floor: a hand-written object on the Hibernation API. */
export const FLOOR = join(REPO_ROOT, 'bench/servers/raw')

/** The floor's trigger for one broadcast of ~1 KB to every socket (bench/servers/behaviour.ts). */
const BROADCAST = { broadcast: 1, pad: PADDING_BYTES }

interface FloorPeer {
  readonly client: Client<unknown, unknown>
  opens: number
  closes: number
}

function floorPeer(url: string, maxQueued: number): FloorPeer {
  const client = connect<unknown, unknown>(url, {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    session: false,
    maxQueued,
  })
  const p: FloorPeer = { client, opens: 0, closes: 0 }
  client.on('open', () => (p.opens += 1))
  client.on('close', () => (p.closes += 1))
  // Refused or cut sockets around the reset are what the run is about.
  client.on('error', () => undefined)
  return p
}

/** {@link FloorStorm}: N plain clients on the durable floor's object under `load`, then its reset. */
export async function floorStorm(
  clients: number,
  load: StormLoad,
  scratch: string,
  bundle: string,
  room: string,
  budgetMs: number,
): Promise<FloorStorm> {
  const dev = await startDevServer(FLOOR, join(scratch, `floor-${String(clients)}-${load}`), {
    direct: true,
    bundle,
    vars: { BENCH_DURABLE: 'on' },
  })
  const peers: FloorPeer[] = []
  let stopStream: (() => void) | undefined
  try {
    const url = `${dev.wsOrigin}/ws/${room}`
    const deadline = performance.now() + budgetMs
    const never = (): boolean => false
    const started = performance.now()
    const broadcaster = floorPeer(url, 5_000)
    for (let i = 0; i < clients; i++) peers.push(floorPeer(url, 1_000))
    peers.push(broadcaster)
    const openAt = await until(() => peers.every((p) => p.opens > 0), deadline, never)
    if (openAt === undefined)
      throw new Error(
        `the floor opened ${String(peers.filter((p) => p.opens > 0).length)} of ${String(peers.length)}`,
      )

    let n = 0
    stopStream = startStream(
      clients,
      load,
      () => broadcaster.client.send(BROADCAST),
      (index) => peers[index]?.client.send({ n: ++n }),
    )
    await sleep(STREAM_MS - STREAM_CPU_MS)
    const cpuAtStream = cpuIfRunning(dev.runtimePid)
    const streamFrom = performance.now()
    await sleep(STREAM_CPU_MS)
    const streamCpuPercent = cpuPercentSince(dev.runtimePid, cpuAtStream, performance.now() - streamFrom)

    const opensBefore = peers.map((p) => p.opens)
    const closesBefore = peers.map((p) => p.closes)
    const resetAt = performance.now()
    const reset = await fetch(`${dev.origin}/rooms/${room}/restart`, { method: 'POST' })
    if (reset.status !== 204) throw new Error(`the floor's restart answered ${String(reset.status)}`)
    const resetMs = performance.now() - resetAt
    const closedAt = await until(
      () => peers.every((p, i) => p.closes > (closesBefore[i] ?? 0)),
      deadline,
      never,
    )
    if (closedAt === undefined) throw new Error("the floor's reset did not close every connection")
    const backAt = await until(() => peers.every((p, i) => p.opens > (opensBefore[i] ?? 0)), deadline, never)
    if (backAt === undefined)
      throw new Error(
        `${String(peers.filter((p, i) => p.opens <= (opensBefore[i] ?? 0)).length)} floor client(s) not back in time`,
      )
    return {
      clients,
      load,
      openMs: openAt - started,
      resetMs,
      closedMs: closedAt - resetAt,
      backMs: backAt - resetAt,
      streamCpuPercent,
    }
  } finally {
    stopStream?.()
    for (const p of peers) p.client.close()
    await dev.stop()
  }
}
