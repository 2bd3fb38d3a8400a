import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import { REPO_ROOT, startDevServer } from './devServer.ts'
import { until } from './watch.ts'

/**
 * The runtime's own share of a deploy, without the package: a hand-written
 * Hibernation-API object (bench/servers/raw) with N plain sockets, reset the
 * way the storm resets the room. Its reset time is work no server code does.
 */
export interface FloorReset {
  clients: number
  /** From the first dial to every socket open. */
  openMs: number
  /** The reset call's own time, as *down* in a storm. */
  resetMs: number
  /** From the reset's request to every client seeing its socket closed. */
  closedMs: number
}

/** The bench's floor: a hand-written object on the Hibernation API. */
export const FLOOR = join(REPO_ROOT, 'bench/servers/raw')

/** {@link FloorReset}: N plain sockets on the floor's object, then its reset. */
export async function floorReset(
  clients: number,
  scratch: string,
  bundle: string,
  room: string,
  budgetMs: number,
): Promise<FloorReset> {
  const dev = await startDevServer(FLOOR, join(scratch, `floor-${String(clients)}`), { direct: true, bundle })
  const sockets: WebSocket[] = []
  try {
    let opened = 0
    let closed = 0
    const deadline = performance.now() + budgetMs
    const started = performance.now()
    for (let i = 0; i < clients; i++) {
      const socket = new WebSocket(`${dev.wsOrigin}/ws/${room}`)
      socket.on('open', () => (opened += 1))
      socket.on('close', () => (closed += 1))
      socket.on('error', () => undefined)
      sockets.push(socket)
    }
    const openAt = await until(
      () => opened === clients,
      deadline,
      () => false,
    )
    if (openAt === undefined)
      throw new Error(`the floor opened ${String(opened)} of ${String(clients)} sockets`)
    await sleep(1_000)
    const resetAt = performance.now()
    const reset = await fetch(`${dev.origin}/rooms/${room}/restart`, { method: 'POST' })
    if (reset.status !== 204) throw new Error(`the floor's restart answered ${String(reset.status)}`)
    const resetMs = performance.now() - resetAt
    const closedAt = await until(
      () => closed === clients,
      deadline,
      () => false,
    )
    if (closedAt === undefined)
      throw new Error(`the floor's reset closed ${String(closed)} of ${String(clients)}`)
    return { clients, openMs: openAt - started, resetMs, closedMs: closedAt - resetAt }
  } finally {
    for (const socket of sockets) socket.terminate()
    await dev.stop()
  }
}
