import { runDurableObjectAlarm } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { connect, eventually, leave, type Client } from './client.js'
import { SessionClient } from './sessionClient.js'
import { part, joinAll } from './shardParts.js'

/** How many times the root's log holds `text`. */
async function timesLogged(room: string, text: string): Promise<number> {
  return (await part(room).logged()).filter(([, frame]) => frame === text).length
}

/** Broadcasts a last message through the root and checks it comes next: nothing else was owed. */
async function expectNothingBefore(room: string, clients: Client[]): Promise<void> {
  await part(room).broadcast('end')
  for (const client of clients) expect(await client.nextText()).toBe('end')
}

describe("a leaf's outbox in a sharded room", () => {
  it('sends a broadcast once after the leaf crashed before the root took it, and does not run the client message again', async () => {
    const room = 'outbox-crashed'
    const sessions: SessionClient[] = []
    for (let n = 0; n < 3; n++) sessions.push(await SessionClient.open(`/shards/${room}`))
    for (const session of sessions) await session.next()
    const [first, second, third] = sessions as [SessionClient, SessionClient, SessionClient]
    // The third session is the only one on leaf 1.
    expect(await part(room, 1).connectionIds()).toEqual([third.id])
    await part(room).refusePublications(Infinity)
    const before = await part(room).publications()
    const seq = third.send('all:kept')
    // The handler ran and its turn committed: the leaf tried to hand the broadcast to the root.
    await eventually(
      () => part(room).publications(),
      (count) => count > before,
    )
    // A plain socket on the same leaf brings it down, between the handler's turn and the root's taking.
    const crasher = await connect(`/shards/${room}`)
    await crasher.nextText()
    crasher.send('crash')
    expect((await third.whenClosed()).code).toBe(1006)
    expect((await crasher.whenClosed()).code).toBe(1006)
    // The restarted leaf still has the message, in its storage.
    expect(await part(room, 1).outboxPending()).toBe(1)
    await part(room).refusePublications(0)
    await runDurableObjectAlarm(part(room, 1))
    expect(await first.nextPayload()).toBe('all:kept')
    expect(await second.nextPayload()).toBe('all:kept')
    const back = await third.resume(`/shards/${room}`)
    // The message counts as handled: the welcome says so, and the client does not send it again.
    expect(back.resumed).toBe(true)
    expect(back.welcome.handled).toBe(seq)
    expect(back.unacked).toEqual([])
    expect(await back.nextPayload()).toBe('all:kept')
    expect(await timesLogged(room, 'all:kept')).toBe(1)
    await part(room).broadcast('end')
    for (const session of [first, second]) expect(await session.nextPayload()).toBe('end')
    // The resumed session is greeted again by `open`, numbered like everything else.
    expect((await back.payloads(2)).sort()).toEqual(['end', `open:${String(third.id)}`])
    await eventually(
      () => part(room, 1).outboxPending(),
      (pending) => pending === 0,
    )
    for (const session of [first, second, back]) session.close(1000)
  })

  it('sends a publication whose answer was lost again, and the root takes it once', async () => {
    const room = 'outbox-answer-lost'
    const { clients } = await joinAll(room, 3)
    const sender = clients[2]!
    await part(room).loseAnswers(1)
    const before = await part(room).publications()
    sender.send('all:once')
    for (const client of clients) expect(await client.nextText()).toBe('all:once')
    // The leaf heard an error and sent the same numbers again; the root skipped what it had.
    await eventually(
      () => part(room).publications(),
      (count) => count >= before + 2,
    )
    await eventually(
      () => part(room, 1).outboxPending(),
      (pending) => pending === 0,
    )
    expect(await timesLogged(room, 'all:once')).toBe(1)
    await expectNothingBefore(room, clients)
    await leave(...clients)
  })

  it('takes once what a restarted leaf resends though the root took it before the crash: the numbers are durable', async () => {
    const room = 'outbox-resent-after-crash'
    const { clients } = await joinAll(room, 3)
    const sender = clients[2]!
    // The root takes the first call but the leaf never hears so, and every later call fails.
    await part(room).loseAnswers(1)
    await part(room).refusePublications(Infinity)
    sender.send('all:taken')
    for (const client of clients) expect(await client.nextText()).toBe('all:taken')
    expect(await part(room, 1).outboxPending()).toBe(1)
    sender.send('crash')
    expect((await sender.whenClosed()).code).toBe(1006)
    await part(room).refusePublications(0)
    // The new instance sends the row again under the same number; the root skips it.
    const before = await part(room).publications()
    await eventually(
      () => part(room, 1).outboxPending(),
      (pending) => pending === 0,
    )
    expect(await part(room).publications()).toBeGreaterThan(before)
    expect(await timesLogged(room, 'all:taken')).toBe(1)
    const rest = clients.slice(0, 2)
    await expectNothingBefore(room, rest)
    await leave(...rest)
  })

  it('keeps a broadcast through more than five failed sends in a row, retrying from the alarm, in order', async () => {
    const room = 'outbox-patient'
    const { clients } = await joinAll(room, 3)
    const sender = clients[2]!
    const failures = 8
    await part(room).refusePublications(failures)
    const before = await part(room).publications()
    sender.send('all:late')
    sender.send('burst:2:later')
    // Each failure sets the leaf's alarm for the retry; run it rather than wait the backoff out.
    await eventually(
      async () => {
        await runDurableObjectAlarm(part(room, 1))
        return part(room).publications()
      },
      (count) => count > before + failures,
    )
    for (const client of clients)
      expect([await client.nextText(), await client.nextText(), await client.nextText()]).toEqual([
        'all:late',
        'later.1',
        'later.2',
      ])
    expect(await timesLogged(room, 'all:late')).toBe(1)
    expect(await part(room, 1).outboxPending()).toBe(0)
    await expectNothingBefore(room, clients)
    await leave(...clients)
  })

  it("leaves the leaf's alarm unset once the root took everything: no alarm for an idle outbox", async () => {
    const room = 'outbox-idle'
    const { clients } = await joinAll(room, 3)
    expect(await runDurableObjectAlarm(part(room, 1))).toBe(false)
    clients[2]!.send('all:quiet')
    for (const client of clients) expect(await client.nextText()).toBe('all:quiet')
    // The safety alarm the message set finds nothing to send, and sets none again.
    expect(await runDurableObjectAlarm(part(room, 1))).toBe(true)
    expect(await runDurableObjectAlarm(part(room, 1))).toBe(false)
    await leave(...clients)
  })
})
