import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import type { Entry, FixtureObject } from './fixture/record.js'
import { eventually } from './client.js'

/**
 * Waits until the runtime has handed the object every close it owes, then
 * has the object rebuilt. A socket closed on one side only (the server's close
 * not yet answered) is still listed by getWebSockets(); once both sides have
 * closed and the object got the event, it is gone. A close handled twice, even
 * one that only a woken object would repeat, is recorded by the time this returns.
 */
export async function closesDelivered(stub: DurableObjectStub<FixtureObject>): Promise<void> {
  await eventually(
    () =>
      runInDurableObject(stub, (_instance, state) =>
        state.getWebSockets().filter((socket) => socket.readyState !== WebSocket.OPEN),
      ).then((halfClosed) => halfClosed.length),
    (count) => count === 0,
  )
  await evictDurableObject(stub, { webSockets: 'hibernate' })
}

/**
 * Waits until the close handler has recorded connection `id` and every
 * later event has reached the object, then returns every close recorded for it.
 */
export async function closesOf(stub: DurableObjectStub<FixtureObject>, id: number): Promise<Entry[]> {
  const closes = (): Promise<Entry[]> =>
    stub.log().then((log) => log.filter((entry) => entry.event === 'close' && entry.id === id))
  await eventually(closes, (found) => found.length > 0)
  await closesDelivered(stub)
  return closes()
}
