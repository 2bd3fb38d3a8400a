import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { connectMany, within, type TestClient } from './client.js'
import { connectionStatus, waitForStatus, type ConnectionStatus } from './connectionStatus.js'
import { createWorkspace, startDev, type DevServer, type Workspace } from './wranglerDev.js'

const CLIENTS = 4

let workspace: Workspace | undefined
let dev: DevServer | undefined
const opened: TestClient[] = []

beforeAll(async () => {
  workspace = await createWorkspace()
})
afterAll(async () => {
  for (const client of opened) client.terminate()
  await dev?.stop()
  await workspace?.remove()
})
beforeEach(({ onTestFailed }) => {
  onTestFailed(() => console.log(`wrangler dev output:\n${dev?.output() ?? '(not running)'}`))
})

async function startOnSameState(): Promise<DevServer> {
  if (workspace === undefined) throw new Error('no workspace')
  dev = await startDev(workspace)
  return dev
}

/** Opens the clients and reads which ids the object gave them: on a fresh process they are the only ones. */
async function openRound(server: DevServer): Promise<{ clients: TestClient[]; status: ConnectionStatus }> {
  const clients = await connectMany(`${server.wsOrigin}/ws`, CLIENTS)
  opened.push(...clients)
  const status = await connectionStatus(server.origin)
  expect(status.ids).toHaveLength(CLIENTS)
  expect(status.lastId).toBe(Math.max(...status.ids))
  return { clients, status }
}

describe('connection ids on the same --persist-to state', () => {
  it('keep counting up across a clean restart and across a SIGKILL, and are never handed out twice', async () => {
    const handedOut: number[] = []

    let server = await startOnSameState()
    const first = await openRound(server)
    expect(first.status.ids).toEqual(Array.from({ length: CLIENTS }, (_, i) => i + 1))
    handedOut.push(...first.status.ids)
    const cleanCloses = await Promise.all(first.clients.map((client) => client.close(1000)))
    expect(cleanCloses.map((closed) => closed.code)).toEqual(Array<number>(CLIENTS).fill(1000))
    await waitForStatus(server.origin, 'the closed connections to leave', (status) => status.ids.length === 0)
    await server.stop()

    server = await startOnSameState()
    const second = await openRound(server)
    expect(Math.min(...second.status.ids)).toBeGreaterThan(first.status.lastId)
    handedOut.push(...second.status.ids)
    await server.kill()
    const dropped = await within(
      Promise.all(second.clients.map((client) => client.closed)),
      'the clients to see their sockets drop',
    )
    expect(dropped.map((closed) => closed.code)).toEqual(Array<number>(CLIENTS).fill(1006))

    server = await startOnSameState()
    const third = await openRound(server)
    expect(Math.min(...third.status.ids)).toBeGreaterThan(Math.max(...handedOut))
    handedOut.push(...third.status.ids)

    expect(new Set(handedOut).size).toBe(handedOut.length)
  })
})
