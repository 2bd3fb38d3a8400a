import { describe, expect, it } from 'vitest'
import { FixtureClient, joinMany, within } from './fixtureClient.js'
import { roomStatus, useLoadServer, waitForRoom } from './loadServer.js'
import { act, clientCodes, randomStorm, serverCodes, stormReport, type Fate } from './storm.js'

/** Handshakes in flight at once: enough to keep both cores busy, few enough that none times out. */
const OPEN_CONCURRENCY = 50
const DELIVERY_MS = 120_000
const CLOSE_MS = 60_000

const dev = useLoadServer()
const join = (room: string): Promise<FixtureClient> => FixtureClient.join(dev().wsOrigin, room)
const byId = (a: number, b: number): number => a - b
const seconds = (since: number): string => ((Date.now() - since) / 1000).toFixed(1)

/** Waits, bounded, until every client has what `enough` asks for; `missing` says what is not there yet. */
async function waitForAll(
  clients: readonly FixtureClient[],
  enough: (client: FixtureClient) => boolean,
  missing: () => string,
): Promise<void> {
  await within(
    Promise.all(clients.map((client) => client.until(() => enough(client), 'its replies', DELIVERY_MS))),
    'the replies',
    DELIVERY_MS,
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}: ${missing()}`)
  })
}

/** Closes every client cleanly, and waits until the room's object has run `close` for each. */
async function closeAll(room: string, clients: readonly FixtureClient[]): Promise<number[]> {
  const closes = await Promise.all(clients.map((client) => client.close(1000, CLOSE_MS)))
  await waitForRoom(
    dev().origin,
    room,
    'every close to run',
    (s) => s.count === 0 && Object.keys(s.closes).length === clients.length,
    CLOSE_MS,
  )
  return closes.map(({ code }) => code)
}

describe('1,000 connections on one object, each sending 50 messages as fast as it can', () => {
  const CLIENTS = 1000
  const MESSAGES = 50

  it('get every message answered, in order per connection, none lost and none duplicated', async () => {
    const room = 'echo'
    const started = Date.now()
    const clients = await joinMany(CLIENTS, OPEN_CONCURRENCY, () => join(room))
    expect(clients.map((client) => client.id).sort(byId)).toEqual(
      Array.from({ length: CLIENTS }, (_, i) => i + 1),
    )

    const sending = Date.now()
    for (const client of clients) {
      for (let seq = 1; seq <= MESSAGES; seq++) client.send({ type: 'echo', seq })
    }
    await waitForAll(
      clients,
      (client) => client.received.length >= MESSAGES,
      () =>
        `${String(clients.reduce((sum, c) => sum + MESSAGES - c.received.length, 0))} of ${String(CLIENTS * MESSAGES)} replies missing`,
    )
    const answered = seconds(sending)

    // Whatever the object sent before the closing handshake arrives before the close frame,
    // so a late duplicate would be in `received` once the sockets have closed.
    expect(await closeAll(room, clients)).toEqual(clients.map(() => 1000))
    const wrong = clients.filter(
      (client) =>
        client.received.length !== MESSAGES ||
        client.received.some(
          (message, i) => message.type !== 'echo' || message.seq !== i + 1 || message.id !== client.id,
        ),
    )
    expect(wrong.map((client) => `${String(client.id)}: ${JSON.stringify(client.received)}`)).toEqual([])
    const after = await roomStatus(dev().origin, room)
    expect(Object.values(after.closes).filter((runs) => JSON.stringify(runs) !== '[1000]')).toEqual([])

    console.log(
      `load: ${String(CLIENTS)} connections × ${String(MESSAGES)} messages, ${String(CLIENTS * MESSAGES)} answered in order in ${answered} s; ${seconds(started)} s with opening and closing`,
    )
  }, 240_000)
})

describe('200 connections receiving 1,000 broadcasts from one sender', () => {
  const RECEIVERS = 200
  const MESSAGES = 1000

  it('each receive all 1,000, in order, once', async () => {
    const room = 'broadcast'
    const started = Date.now()
    const receivers = await joinMany(RECEIVERS, OPEN_CONCURRENCY, () => join(room))
    const sender = await join(room)

    const sending = Date.now()
    for (let seq = 1; seq <= MESSAGES; seq++) sender.send({ type: 'say', seq })
    await waitForAll(
      receivers,
      (client) => client.received.length >= MESSAGES,
      () =>
        `${String(receivers.reduce((sum, c) => sum + MESSAGES - c.received.length, 0))} of ${String(RECEIVERS * MESSAGES)} broadcasts missing`,
    )
    const delivered = seconds(sending)

    expect(await closeAll(room, [...receivers, sender])).toEqual([...receivers, sender].map(() => 1000))
    const wrong = receivers.filter(
      (client) =>
        client.received.length !== MESSAGES ||
        client.received.some(
          (message, i) => message.type !== 'said' || message.seq !== i + 1 || message.from !== sender.id,
        ),
    )
    expect(wrong.map((client) => `${String(client.id)}: ${JSON.stringify(client.received)}`)).toEqual([])
    // `except` keeps the sender's own broadcasts from it.
    expect(sender.received).toEqual([])

    console.log(
      `broadcast: ${String(RECEIVERS)} receivers × ${String(MESSAGES)} messages from one sender, ${String(RECEIVERS * MESSAGES)} delivered in order in ${delivered} s; ${seconds(started)} s in all`,
    )
  }, 240_000)
})

describe('a storm of 2,000 opens with closes from both sides while messages flow', () => {
  const ROOMS = ['storm-0', 'storm-1', 'storm-2', 'storm-3']
  const OPENS = 2000
  /** Connections opened one after another; within a room, each lane's ids must grow. */
  const LANES = 40
  const ECHOES = 3

  interface Opened {
    readonly client: FixtureClient
    readonly fate: Fate
    readonly lane: number
    /** Echo messages sent on it so far. */
    sent: number
  }

  it('hands out unique ids that grow per room, ends with connections() equal to the sockets still open, and runs close once per closed socket', async () => {
    const started = Date.now()
    const { seed, fates, delays } = randomStorm(OPENS)
    const opened: Opened[] = []
    const stayers: Opened[] = []

    let next = 0
    const lane = async (laneNumber: number): Promise<void> => {
      for (let index = next++; index < OPENS; index = next++) {
        const client = await join(ROOMS[index % ROOMS.length] ?? '')
        const entry: Opened = { client, fate: fates[index] ?? 'stay', lane: laneNumber, sent: 0 }
        opened.push(entry)
        for (; entry.sent < ECHOES; entry.sent++) client.send({ type: 'echo', seq: entry.sent + 1 })
        act(client, entry.fate, delays[index] ?? 0)
        if (entry.fate === 'stay') stayers.push(entry)
        // Keeps messages flowing on sockets opened earlier while others open and close.
        const earlier = stayers[index % stayers.length]
        if (earlier !== undefined) earlier.client.send({ type: 'echo', seq: ++earlier.sent })
      }
    }
    await Promise.all(Array.from({ length: LANES }, (_, n) => lane(n)))
    const openedIn = seconds(started)

    await within(
      Promise.all(opened.filter(({ fate }) => fate !== 'stay').map(({ client }) => client.closed)),
      'the sockets that were to close',
      CLOSE_MS,
    )
    await waitForAll(
      stayers.map(({ client }) => client),
      (client) => client.echoes().length >= (stayers.find((s) => s.client === client)?.sent ?? 0),
      () => 'echoes missing on sockets still open',
    )

    const failures: string[] = []
    for (const room of ROOMS) {
      const inRoom = opened.filter(({ client }) => client.room === room)
      const open = inRoom.filter(({ fate }) => fate === 'stay').map(({ client }) => client.id)
      const closed = inRoom.filter(({ fate }) => fate !== 'stay')
      const status = await waitForRoom(
        dev().origin,
        room,
        'the closes to settle',
        (now) => now.count === open.length && Object.keys(now.closes).length === closed.length,
        CLOSE_MS,
      )
      // Every id from 1 to the last was greeted to exactly one of the room's clients.
      expect(inRoom.map(({ client }) => client.id).sort(byId), `ids greeted in ${room}`).toEqual(
        Array.from({ length: inRoom.length }, (_, i) => i + 1),
      )
      expect(status.lastId).toBe(inRoom.length)
      for (let n = 0; n < LANES; n++) {
        const ids = inRoom.filter(({ lane: l }) => l === n).map(({ client }) => client.id)
        if (ids.some((id, i) => i > 0 && id <= (ids[i - 1] ?? 0))) {
          failures.push(`${room}, lane ${String(n)}: ids not increasing: ${ids.join(' ')}`)
        }
      }
      expect(status.ids, `connections() of ${room}`).toEqual(open.sort(byId))
      expect(status.count).toBe(open.length)
      for (const { client, fate } of closed) {
        const runs = status.closes[String(client.id)] ?? []
        if (runs.length !== 1 || !serverCodes[fate as Exclude<Fate, 'stay'>].includes(runs[0] ?? 0)) {
          failures.push(`${room}: close ran ${JSON.stringify(runs)} for ${String(client.id)} (${fate})`)
        }
      }
      const closedIds = new Set(closed.map(({ client }) => String(client.id)))
      for (const id of Object.keys(status.closes).filter((id) => !closedIds.has(id))) {
        failures.push(`${room}: close ran for ${id}, which is still open`)
      }
    }
    for (const { client, fate, sent } of opened) {
      const echoes = client.echoes()
      const seqs = echoes.map(({ seq }) => seq)
      // A terminated socket may lose replies in flight; any other gets each, once, in order.
      const complete = fate === 'terminate' ? seqs.length <= sent : seqs.length === sent
      if (!complete || seqs.some((seq, i) => seq !== i + 1) || echoes.some(({ id }) => id !== client.id)) {
        failures.push(
          `${client.room}: ${String(client.id)} (${fate}) sent ${String(sent)} echoes, got ${seqs.join(' ')}`,
        )
      }
      const code = client.closedWith?.code ?? 0
      if (fate !== 'stay' && !clientCodes[fate].includes(code)) {
        failures.push(`${client.room}: ${String(client.id)} (${fate}) saw close ${String(code)}`)
      }
    }
    expect(
      failures.slice(0, 20),
      `storm seed ${String(seed)} (STORM_SEED=${String(seed)} repeats the fates)`,
    ).toEqual([])

    const echoes = opened.reduce((sum, { client }) => sum + client.echoes().length, 0)
    console.log(`${stormReport(seed, fates, echoes)}; opened in ${openedIn} s, ${seconds(started)} s in all`)
  }, 240_000)
})
