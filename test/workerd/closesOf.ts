import type { Entry, FixtureObject } from './fixture/record.js'
import { eventually, sleep } from './client.js'

/** Long enough for a duplicate close, had there been one, to be recorded too. */
const SETTLE_MS = 100

/**
 * Waits until the close handler has recorded connection `id`, lets any
 * duplicate arrive, and returns every close recorded for it.
 */
export async function closesOf(stub: DurableObjectStub<FixtureObject>, id: number): Promise<Entry[]> {
  const closes = (): Promise<Entry[]> =>
    stub.log().then((log) => log.filter((entry) => entry.event === 'close' && entry.id === id))
  await eventually(closes, (found) => found.length > 0)
  await sleep(SETTLE_MS)
  return closes()
}
