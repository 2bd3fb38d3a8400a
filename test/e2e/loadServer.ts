import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, beforeEach } from 'vitest'
import { terminateAll } from './fixtureClient.js'
import type { Status } from './fixtures/load/protocol.js'
import { createWorkspace, startDev, type DevServer, type Workspace } from './wranglerDev.js'

/** The fixture worker of the fault and load tests. */
export const LOAD_CONFIG = resolve(import.meta.dirname, 'fixtures/load/wrangler.toml')

const POLL_MS = 100
const WAIT_MS = 30_000
/** wrangler's log line for a request that went well: thousands of them would bury the rest. */
const ANSWERED = /^\[wrangler:info\] (GET|POST) \S+ (101|200) /

/**
 * One `wrangler dev` of the load fixture on fresh state for the whole file,
 * stopped afterwards even when a test failed. A failed test prints what
 * wrangler logged, less the requests that went well.
 */
export function useLoadServer(): () => DevServer {
  let workspace: Workspace | undefined
  let dev: DevServer | undefined
  beforeAll(async () => {
    workspace = await createWorkspace()
    dev = await startDev(workspace, { config: LOAD_CONFIG })
  })
  afterAll(async () => {
    terminateAll()
    await dev?.stop()
    await workspace?.remove()
  })
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => console.log(`wrangler dev output:\n${devOutput(dev)}`))
  })
  return () => {
    if (dev === undefined) throw new Error('wrangler dev is not running')
    return dev
  }
}

/** The last lines wrangler printed, less the requests answered, for a failure message. */
export function devOutput(dev: DevServer | undefined): string {
  if (dev === undefined) return '(not started)'
  const lines = dev.output().split('\n')
  return lines
    .filter((line) => !ANSWERED.test(line))
    .slice(-80)
    .join('\n')
}

/** What the room's object says of itself, read over RPC through `GET /rooms/<room>/status`. */
export async function roomStatus(origin: string, room: string): Promise<Status> {
  const response = await fetch(`${origin}/rooms/${room}/status`)
  if (!response.ok) {
    throw new Error(`GET /rooms/${room}/status answered ${String(response.status)}: ${await response.text()}`)
  }
  return (await response.json()) as Status
}

/**
 * Polls until `done` holds. A close reaches the object a moment after the
 * client sees it, so a test that expects an id to leave has to wait for it.
 */
export async function waitForRoom(
  origin: string,
  room: string,
  what: string,
  done: (status: Status) => boolean,
  ms = WAIT_MS,
): Promise<Status> {
  const deadline = Date.now() + ms
  let status = await roomStatus(origin, room)
  while (!done(status)) {
    if (Date.now() > deadline) {
      throw new Error(
        `gave up after ${String(ms)} ms waiting for ${what} in ${room}; last status: ${JSON.stringify(status).slice(0, 2000)}`,
      )
    }
    await sleep(POLL_MS)
    status = await roomStatus(origin, room)
  }
  return status
}
