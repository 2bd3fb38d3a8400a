import { setTimeout as sleep } from 'node:timers/promises'

const POLL_MS = 100
const WAIT_MS = 15_000

/** What the demo's `GET /connections` answers, read from the Durable Object over RPC. */
export interface ConnectionStatus {
  /** Ids of the open connections, ascending. */
  ids: number[]
  /** The highest id ever handed out. */
  lastId: number
}

export async function connectionStatus(origin: string): Promise<ConnectionStatus> {
  const response = await fetch(`${origin}/connections`)
  if (!response.ok)
    throw new Error(`GET /connections answered ${String(response.status)}: ${await response.text()}`)
  return (await response.json()) as ConnectionStatus
}

/**
 * Polls until `done` holds. A close reaches the object a moment after the
 * client sees it, so a test that expects an id to leave has to wait for it.
 */
export async function waitForStatus(
  origin: string,
  what: string,
  done: (status: ConnectionStatus) => boolean,
): Promise<ConnectionStatus> {
  const deadline = Date.now() + WAIT_MS
  let status = await connectionStatus(origin)
  while (!done(status)) {
    if (Date.now() > deadline) {
      throw new Error(
        `gave up after ${String(WAIT_MS)} ms waiting for ${what}; last status: ${JSON.stringify(status)}`,
      )
    }
    await sleep(POLL_MS)
    status = await connectionStatus(origin)
  }
  return status
}

/** The ids that are in `after` and not in `before`. */
export function newIds(before: ConnectionStatus, after: ConnectionStatus): number[] {
  return after.ids.filter((id) => !before.ids.includes(id))
}
