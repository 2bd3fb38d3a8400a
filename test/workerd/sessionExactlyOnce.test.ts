import { describe, expect, it } from 'vitest'
import { eventually } from './client.js'
import { opened, sessionsRoom } from './sessionFixture.js'

describe('exactly once, as docs/guarantees.md states it', () => {
  it("gives each message's handler the session's number for it, one more per message", async () => {
    const session = await opened('/sessions/numbered')
    session.send('echo:one')
    expect(await session.nextPayload()).toBe('echo:one')
    session.send('seq')
    expect(await session.nextPayload()).toBe('seq:2')
    session.send('seq')
    expect(await session.nextPayload()).toBe('seq:3')
    session.close(1000)
  })

  it('marks a message handled only when its handler is done, and a resume while it runs keeps what it does: it runs once, and its later change to data survives', async () => {
    const room = sessionsRoom('running')
    const first = await opened('/sessions/running')
    first.send('hold-set:late')
    await eventually(
      () => room.log(),
      (log) => log.some((entry) => entry.message === 'hold-set:late'),
    )
    await first.drop(room)

    const second = await first.resume('/sessions/running')
    // The handler has not finished: the message is not handled yet, so the client sends it again,
    // and the server, which took it already, drops that copy.
    expect(second.welcome).toMatchObject({ resumed: true, handled: 0 })
    // The resumed socket took over the session's queue: its `open` runs after the held handler.
    await second.expectNothingWithin(50)
    await room.release('late')
    expect(await second.nextPayload()).toBe('held:late')
    expect(await second.nextPayload()).toBe(`open:${String(first.id)}:true`)
    // A handler on the resumed socket reads and stores data after the earlier one changed it.
    second.send('set:k=v')
    second.send('echo:sync')
    expect(await second.nextPayload()).toBe('echo:sync')
    await second.drop(room)

    const third = await second.resume('/sessions/running')
    expect(third.welcome).toMatchObject({ resumed: true, handled: 3 })
    expect(await third.nextPayload()).toBe(`open:${String(first.id)}:true`)
    const log = await room.log()
    expect(log.filter((entry) => entry.message === 'hold-set:late')).toHaveLength(1)
    expect(log.filter((entry) => entry.event === 'open').at(-1)?.data).toBe('{"held":"late","k":"v"}')
    third.close(1000)
  })

  it('runs a message again, with the same number, when the object went away while its handler ran: the handler can tell it is a retry', async () => {
    const first = await opened('/sessions/crashed')
    const seq = first.send('crash-once')
    expect((await first.whenClosed()).code).toBe(1006)

    const second = await first.resume('/sessions/crashed')
    expect(second.welcome).toMatchObject({ resumed: true, handled: 0 })
    expect(await second.nextPayload()).toBe(`open:${String(first.id)}:true`)
    expect(await second.nextPayload()).toBe(`done:${String(seq)}`)
    // A stub whose object threw is broken for good; the restarted object needs a new one.
    const runs = (await sessionsRoom('crashed').log()).filter((entry) => entry.event === 'seq')
    expect(runs).toEqual([
      { event: 'seq', id: first.id, seq },
      { event: 'seq', id: first.id, seq },
    ])
    await second.sync()
    expect(second.unacked).toEqual([])
    second.close(1000)
  })
})
