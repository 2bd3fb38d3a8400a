import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { FixtureClient, joinMany, within, type JoinOptions } from './fixtureClient.js'
import type { Status } from './fixtures/load/protocol.js'
import { LOAD_CONFIG, devOutput, roomStatus, useLoadServer, waitForRoom } from './loadServer.js'
import { Opcode, closeFrame, frame, openRaw, type RawSocket } from './rawSocket.js'
import { createWorkspace, startDev, type DevServer } from './wranglerDev.js'

/** wrangler dev evicts an idle object about 10 s after its last event; this leaves it room to. */
const IDLE_MS = 12_000
/** Long enough for a second `close` run, if there were one, to reach the record. */

const dev = useLoadServer()
const join = (room: string, options?: JoinOptions): Promise<FixtureClient> =>
  FixtureClient.join(dev().wsOrigin, room, options)
const status = (room: string): Promise<Status> => roomStatus(dev().origin, room)
const byId = (a: number, b: number): number => a - b

/**
 * The room's status once the object has hibernated and been built again: a
 * close event delivered late, after a wake, would show in it as a second run
 * of `close`, which a fixed short wait could miss.
 */
async function statusAfterRebuild(room: string): Promise<Status> {
  const before = await status(room)
  await sleep(IDLE_MS)
  const after = await status(room)
  expect(after.instance, 'the object was built again after idling into hibernation').toBeGreaterThan(
    before.instance,
  )
  return after
}

describe('a live connection whose object hibernates between two of its messages', () => {
  it('keeps its id, data, room and tags; connections() lists exactly the open sockets; the next message is handled as usual', async () => {
    const room = 'hibernation'
    const stayers = await Promise.all(
      ['red', 'green', 'blue'].map((colour) => join(room, { key: colour, tags: [colour, 'team-1'] })),
    )
    const leaver = await join(room, { key: 'leaver' })
    const vanisher = await join(room, { key: 'vanisher' })
    for (const client of stayers) {
      client.send({ type: 'note', text: `before ${String(client.id)}` })
      expect(await client.next('noted')).toEqual({ type: 'noted', notes: [`before ${String(client.id)}`] })
    }
    expect((await leaver.close(1000)).code).toBe(1000)
    vanisher.socket.terminate()
    const before = await waitForRoom(
      dev().origin,
      room,
      'the two that left to be gone',
      (s) => s.count === stayers.length,
    )
    expect(before.ids).toEqual(stayers.map((c) => c.id).sort(byId))

    // Nothing reaches the object now: no message, no RPC, no heartbeat.
    await sleep(IDLE_MS)

    for (const client of stayers) client.send({ type: 'inspect' })
    const seen = await Promise.all(stayers.map((client) => client.next('inspect')))
    for (const [i, client] of stayers.entries()) {
      const colour = ['red', 'green', 'blue'][i] ?? ''
      expect(seen[i]).toEqual({
        type: 'inspect',
        id: client.id,
        room,
        data: { key: colour, faulty: false, notes: [`before ${String(client.id)}`] },
        tags: [colour, 'team-1', `key:${colour}`],
        connections: before.ids,
        // A new constructor run answered: the object really was evicted in between.
        instance: expect.any(Number) as number,
      })
      expect(seen[i]?.instance).toBeGreaterThan(before.instance)
    }
    for (const client of stayers) {
      client.send({ type: 'echo', seq: 1 })
      client.send({ type: 'note', text: 'after' })
    }
    for (const client of stayers) {
      expect(await client.next('echo')).toEqual({ type: 'echo', seq: 1, id: client.id })
      expect((await client.next('noted')).notes).toEqual([`before ${String(client.id)}`, 'after'])
    }
    const after = await status(room)
    expect(after.ids).toEqual(before.ids)
    expect(after.lastId).toBe(before.lastId)
    expect(after.closes).toEqual({ [String(leaver.id)]: [1000], [String(vanisher.id)]: [1006] })
  })
})

describe('a client that vanishes without a close frame', () => {
  it('leaves connections(), close runs once for it with 1006, and the others carry on', async () => {
    const room = 'vanish'
    const [stayer, vanisher] = [await join(room), await join(room, { key: 'vanisher' })]
    vanisher.socket.terminate()
    expect((await vanisher.closed).code).toBe(1006)

    await waitForRoom(dev().origin, room, 'close to run', (s) => s.closes[String(vanisher.id)] !== undefined)
    const after = await statusAfterRebuild(room)
    expect(after.ids).toEqual([stayer.id])
    expect(after.count).toBe(1)
    expect(after.closes).toEqual({ [String(vanisher.id)]: [1006] })
    expect(after.events).toEqual({ vanisher: ['close 1006'] })
    stayer.send({ type: 'echo', seq: 1 })
    expect(await stayer.next('echo')).toEqual({ type: 'echo', seq: 1, id: stayer.id })
  })
})

describe('a handler that throws for one connection', () => {
  const BUSY = 100
  const MESSAGES = 50

  it(`closes only that one, with 1011, while ${String(BUSY)} others busy sending get every reply, in order`, async () => {
    const room = 'throwing'
    const busy = await joinMany(BUSY, 25, () => join(room))
    const faulty = await join(room, { faulty: true })

    const sendRound = (from: number, to: number): void => {
      for (let seq = from; seq <= to; seq++) for (const client of busy) client.send({ type: 'echo', seq })
    }
    sendRound(1, MESSAGES / 2)
    faulty.send({ type: 'echo', seq: 1 })
    sendRound(MESSAGES / 2 + 1, MESSAGES)

    // The reason is the package's fixed text: nothing of the thrown error reaches the client.
    expect(await within(faulty.closed, 'the faulty connection to close', 10_000)).toEqual({
      code: 1011,
      reason: 'Internal Error',
    })
    expect(faulty.received).toEqual([])
    await Promise.all(
      busy.map((client) =>
        client.until(() => client.echoes().length >= MESSAGES, `${String(MESSAGES)} echoes`, 30_000),
      ),
    )
    const expected = (client: FixtureClient): unknown[] =>
      Array.from({ length: MESSAGES }, (_, i) => ({ type: 'echo', seq: i + 1, id: client.id }))
    expect(
      busy.filter((client) => JSON.stringify(client.received) !== JSON.stringify(expected(client))),
    ).toHaveLength(0)
    expect(busy.every((client) => client.isOpen)).toBe(true)

    const after = await status(room)
    expect(after.ids).toEqual(busy.map((client) => client.id).sort(byId))
    expect(after.closes).toEqual({ [String(faulty.id)]: [1011] })
  })
})

describe('close and error reported for the same socket', () => {
  /** What a raw client does after its greeting, and the runtime callbacks it provokes. */
  const cases: { name: string; act: (raw: RawSocket) => void; reported: string; closeCode: number }[] = [
    {
      name: 'server-close-then-protocol-error',
      act: ({ socket }) =>
        socket.write(
          Buffer.concat([
            frame(Opcode.TEXT, JSON.stringify({ type: 'bye', code: 4001 })),
            frame(Opcode.TEXT, '{}', { rsv1: true }),
          ]),
        ),
      reported: 'error',
      closeCode: 4001,
    },
    {
      name: 'server-close-then-reset',
      act: ({ socket }) => {
        socket.write(frame(Opcode.TEXT, JSON.stringify({ type: 'bye', code: 4001 })))
        socket.resetAndDestroy()
      },
      reported: 'close 1006',
      closeCode: 4001,
    },
    {
      name: 'client-close-then-protocol-error',
      act: ({ socket }) =>
        socket.write(Buffer.concat([closeFrame(1000), frame(Opcode.TEXT, '{}', { rsv1: true })])),
      reported: 'close 1000',
      closeCode: 1000,
    },
    {
      name: 'protocol-error-then-reset',
      act: ({ socket }) => {
        socket.write(frame(Opcode.TEXT, '{}', { rsv1: true }))
        socket.resetAndDestroy()
      },
      reported: 'error',
      closeCode: 1006,
    },
    {
      name: 'reset-mid-frame',
      act: ({ socket }) => {
        socket.write(frame(Opcode.TEXT, JSON.stringify({ type: 'echo', seq: 1 })).subarray(0, 9))
        setTimeout(() => socket.resetAndDestroy(), 50)
      },
      reported: 'close 1006',
      closeCode: 1006,
    },
  ]

  it('runs close exactly once, whether the server closed first, the client did, or neither', async () => {
    const room = 'close-and-error'
    const raws = await Promise.all(cases.map(({ name }) => openRaw(dev().origin, `/ws/${room}?key=${name}`)))
    try {
      const ids = await Promise.all(raws.map((raw) => greetedId(raw)))
      for (const [i, { act }] of cases.entries()) act(raws[i]!)
      await waitForRoom(dev().origin, room, 'every socket to be reported and closed', (s) =>
        cases.every(({ name }, i) => s.events[name] !== undefined && s.closes[String(ids[i])] !== undefined),
      )
      const after = await statusAfterRebuild(room)
      expect(after.ids).toEqual([])
      for (const [i, { name, reported, closeCode }] of cases.entries()) {
        expect(after.events[name], `what the runtime reported for ${name}`).toContain(reported)
        expect(after.closes[String(ids[i])], `the close runs for ${name}`).toEqual([closeCode])
      }
    } finally {
      for (const raw of raws) raw.socket.destroy()
    }
  })
})

describe('a client that breaks off its side of the connection', () => {
  /** Well inside the ~10 s after which an idle object hibernates and the runtime drops its sockets. */
  const ANSWER_MS = 4_000

  it('gets its close frame answered with its code even when its reason is over the 123-byte limit', async () => {
    const raw = await openRaw(dev().origin, '/ws/broken-off?key=long-reason')
    try {
      await greetedId(raw)
      const longReason = 'r'.repeat(130)
      raw.socket.write(
        frame(Opcode.CLOSE, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from(longReason)])),
      )
      await within(raw.ended, 'the server to answer the close and end the connection', ANSWER_MS)
      const answer = raw.frames().find((sent) => sent.opcode === Opcode.CLOSE)
      expect(answer?.payload.readUInt16BE(0)).toBe(1000)
      expect(answer?.payload.length).toBe(2)
    } finally {
      raw.socket.destroy()
    }
  })

  it('has its half-closed TCP connection released by the server, not left open until the object sleeps', async () => {
    const raw = await openRaw(dev().origin, '/ws/broken-off?key=half-closed')
    try {
      await greetedId(raw)
      // Part of a frame that declares more than it carries, then the client's FIN.
      raw.socket.write(
        frame(Opcode.TEXT, JSON.stringify({ type: 'echo', seq: 1, pad: 'x'.repeat(80) })).subarray(0, 20),
      )
      raw.socket.end()
      await within(raw.ended, 'the server to release the half-closed connection', ANSWER_MS)
    } finally {
      raw.socket.destroy()
    }
  })
})

describe('a text frame that is not valid UTF-8', () => {
  it('reaches the object with U+FFFD in place of the bad bytes: 1007 when that is no JSON, accepted when it is; others carry on', async () => {
    const room = 'utf8'
    const [broken, lossy, bystander] = [await join(room), await join(room), await join(room)]

    // `ws` does not check what it sends: a Buffer with `binary: false` goes out as a text frame as it is.
    broken.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })
    lossy.socket.send(
      Buffer.concat([Buffer.from('{"type":"note","text":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
      { binary: false },
    )

    expect(await within(broken.closed, 'the broken connection to close', 10_000)).toEqual({
      code: 1007,
      reason: 'Malformed message',
    })
    expect(await lossy.next('noted')).toEqual({ type: 'noted', notes: ['\uFFFD('] })
    bystander.send({ type: 'echo', seq: 1 })
    expect(await bystander.next('echo')).toEqual({ type: 'echo', seq: 1, id: bystander.id })

    const after = await waitForRoom(dev().origin, room, 'the close', (s) => s.count === 2)
    expect(after.ids).toEqual([lossy.id, bystander.id].sort(byId))
    expect(after.closes).toEqual({ [String(broken.id)]: [1007] })
  })
})

describe('wrangler dev killed with SIGKILL and restarted on the same state', () => {
  const ROOMS = ['crash-a', 'crash-b', 'crash-c']
  const PER_ROOM = 4
  const KILLS = 3
  /** How long handshakes go on before the kill lands among them. */
  const IN_FLIGHT_MS = 300

  it(`drops every socket, and over ${String(KILLS)} kills in ${String(ROOMS.length)} rooms reconnecting clients get ids above every id handed out before, never one twice`, async ({
    onTestFailed,
  }) => {
    const workspace = await createWorkspace()
    let server: DevServer | undefined
    onTestFailed(() => console.log(`wrangler dev output:\n${devOutput(server)}`))
    const handedOut = new Map(ROOMS.map((room) => [room, [] as number[]]))
    const highest = (room: string): number => Math.max(0, ...(handedOut.get(room) ?? []))
    try {
      server = await startDev(workspace, { config: LOAD_CONFIG })
      // The same port each time, so clients reconnect to the address they had.
      const port = Number(new URL(server.origin).port)
      for (let round = 0; ; round++) {
        const running = server
        const clients = await Promise.all(
          ROOMS.flatMap((room) =>
            Array.from({ length: PER_ROOM }, () => FixtureClient.join(running.wsOrigin, room)),
          ),
        )
        for (const room of ROOMS) {
          const ids = clients.filter((c) => c.room === room).map((c) => c.id)
          expect(
            Math.min(...ids),
            `the lowest new id in ${room} after ${String(round)} kills`,
          ).toBeGreaterThan(highest(room))
          handedOut.get(room)?.push(...ids)
          const now = await roomStatus(running.origin, room)
          // Only this round's sockets: the ones the kill dropped are gone, and their close never ran.
          expect(now.ids).toEqual(ids.sort(byId))
          expect(now.lastId).toBe(highest(room))
          expect(now.closes).toEqual({})
        }
        if (round === KILLS) break

        // Handshakes keep going, one after another in each room, until the kill cuts one short:
        // whatever id one of them saw is spent too.
        const inFlight = ROOMS.map(async (room) => {
          const seen: number[] = []
          for (;;) {
            try {
              seen.push((await FixtureClient.join(running.wsOrigin, room)).id)
            } catch {
              return { room, seen }
            }
          }
        })
        await sleep(IN_FLIGHT_MS)
        await running.kill()
        const dropped = await within(
          Promise.all(clients.map((client) => client.closed)),
          'the clients to see their sockets drop',
          10_000,
        )
        expect(dropped.map(({ code }) => code)).toEqual(clients.map(() => 1006))
        const opened = await Promise.all(inFlight)
        for (const { room, seen } of opened) handedOut.get(room)?.push(...seen)
        expect(opened.flatMap(({ seen }) => seen).length, 'handshakes done before the kill').toBeGreaterThan(
          0,
        )

        server = await startDev(workspace, { config: LOAD_CONFIG, port })
      }
      for (const room of ROOMS) {
        const ids = handedOut.get(room) ?? []
        expect(new Set(ids).size, `ids handed out twice in ${room}`).toBe(ids.length)
      }
    } finally {
      await server?.stop()
      await workspace.remove()
    }
  }, 90_000)
})

/** The id in the fixture's greeting, the first frame a raw client gets. */
async function greetedId(raw: RawSocket): Promise<number> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const [hello] = raw.frames()
    if (hello !== undefined) return (JSON.parse(hello.payload.toString()) as { id: number }).id
    if (Date.now() > deadline) throw new Error('no greeting on a raw socket')
    await sleep(20)
  }
}
