import { describe, expect, it } from 'vitest'
import { connect } from './client.js'
import { SessionClient, type DataFrame } from './sessionClient.js'
import { part } from './shardParts.js'

/**
 * Opens the session a test moves (tagged `blue`, on leaf 0), a plain
 * neighbour on leaf 0 and one untagged session on leaf 1, and reads their
 * greetings. Leaf 0 is then the only leaf holding `blue`.
 */
async function threeSessions(room: string): Promise<[SessionClient, SessionClient, SessionClient]> {
  const subject = await SessionClient.open(`/shards/${room}?tag=blue`)
  const other = await SessionClient.open(`/shards/${room}`)
  const far = await SessionClient.open(`/shards/${room}`)
  for (const session of [subject, other, far])
    expect(await session.nextPayload()).toBe(`open:${String(session.id)}`)
  expect((await part(room, 0).connectionIds()).sort()).toEqual([subject.id, other.id].sort())
  expect(await part(room, 1).connectionIds()).toEqual([far.id])
  return [subject, other, far]
}

/**
 * While `subject` is away: a send to its id through the root, a `to(blue)`
 * from a handler on leaf 1, broadcasts from a handler and through the root,
 * and another send to its id, each numbered before the next is made.
 * Returns what it must be replayed, in that order.
 */
async function missWhileAway(
  room: string,
  subject: SessionClient,
  other: SessionClient,
  far: SessionClient,
): Promise<string[]> {
  expect(await part(room).send(subject.id, 'direct-1')).toBe(true)
  far.send('to:blue:tagged')
  // Published by leaf 1 right after the to(blue): numbered after it once `other` has it.
  far.send('all:from-leaf-1')
  expect(await other.nextPayload()).toBe('all:from-leaf-1')
  await part(room).broadcast('from-root')
  expect(await other.nextPayload()).toBe('from-root')
  expect(await part(room).send(subject.id, 'direct-2')).toBe(true)
  return ['direct-1', 'to:blue:tagged', 'all:from-leaf-1', 'from-root', 'direct-2']
}

/** {@link threeSessions}, then `subject` dropped from leaf 0 and resumed on leaf 2, its greeting read there. */
async function movedToLeaf2(room: string): Promise<{
  subject: SessionClient
  other: SessionClient
  far: SessionClient
  moved: SessionClient
}> {
  const [subject, other, far] = await threeSessions(room)
  await subject.drop(part(room, 0))
  const moved = await subject.resume(`/shards/${room}?tag=blue`, { via: part(room, 2) })
  expect(await moved.nextPayload()).toBe(`open:${String(subject.id)}`)
  return { subject, other, far, moved }
}

/** The next `count` data frames, checked to come in the root's order with no number twice. */
async function inOrder(session: SessionClient, count: number): Promise<DataFrame[]> {
  const frames: DataFrame[] = []
  while (frames.length < count) frames.push(await session.next())
  const seqs = frames.map((frame) => frame.seq)
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
  expect(new Set(seqs).size).toBe(seqs.length)
  return frames
}

describe('a session that moved to another leaf, as the root routes it', () => {
  it('replays the sends to its id, its tag and the broadcasts it missed once and in order, though its new leaf was sent none of the first two', async () => {
    const room = 'moves-replay'
    const [subject, other, far] = await threeSessions(room)
    await subject.drop(part(room, 0))
    const missed = await missWhileAway(room, subject, other, far)

    const back = await subject.resume(`/shards/${room}?tag=blue`, { via: part(room, 2) })
    expect(back.welcome).toMatchObject({ id: subject.id, resumed: true })
    expect((await inOrder(back, missed.length)).map((frame) => frame.payload)).toEqual(missed)
    // The open handler's greeting on the new leaf: a send to its id, numbered after the move.
    expect(await back.nextPayload()).toBe(`open:${String(subject.id)}`)
    await back.expectNothingWithin(100)
    for (const session of [other, far, back]) session.close(1000)
  })

  it('routes to its new leaf what is sent to its id after the move: send(id) through the root, a reply, a to(tag)', async () => {
    const room = 'moves-live'
    const { subject, other, far, moved: back } = await movedToLeaf2(room)

    expect(await part(room).send(subject.id, 'after-move')).toBe(true)
    expect(await back.nextPayload()).toBe('after-move')
    const c = back.request('q')
    expect(await back.next()).toMatchObject({ payload: 're:q', mark: { type: 'reply', to: c } })
    far.send('to:blue:later')
    expect(await back.nextPayload()).toBe('to:blue:later')
    await back.expectNothingWithin(100)
    // Leaf 0 got none of it: its neighbour there hears only the broadcast that ends the test.
    await part(room).broadcast('end')
    expect(await other.nextPayload()).toBe('end')
    expect(await back.nextPayload()).toBe('end')
    for (const session of [other, far, back]) session.close(1000)
  })

  it('counts it once on its new leaf, and close(id) through the root closes it there', async () => {
    const room = 'moves-close'
    const { subject, other, far, moved: back } = await movedToLeaf2(room)

    expect(await part(room).count()).toBe(3)
    expect(await part(room).ids()).toEqual([subject.id, other.id, far.id].sort((a, b) => a - b))
    expect(await part(room).close(subject.id, 4001, 'moved and closed')).toBe(true)
    expect(await back.whenClosed()).toMatchObject({ code: 4001, reason: 'moved and closed' })
    expect(await part(room, 2).connectionIds()).toEqual([])
    expect(await part(room).count()).toBe(2)
    expect(await part(room).ids()).toEqual([other.id, far.id].sort((a, b) => a - b))
    expect(await part(room).send(subject.id, 'too late')).toBe(false)
    for (const session of [other, far]) session.close(1000)
  })

  it('reaches it from a third leaf too: send(id) and close(id) made on leaf 1 ask the root where it moved', async () => {
    const room = 'moves-from-a-leaf'
    const { subject, other, far, moved: back } = await movedToLeaf2(room)

    // Leaf 1 neither handed the id out nor holds it; leaf 0 handed it out and holds it no more.
    expect(await part(room, 1).send(subject.id, 'from-leaf-1')).toBe(true)
    expect(await back.nextPayload()).toBe('from-leaf-1')
    expect(await part(room, 0).send(subject.id, 'from-leaf-0')).toBe(true)
    expect(await back.nextPayload()).toBe('from-leaf-0')
    expect(await part(room, 1).close(subject.id, 4003, 'closed from leaf 1')).toBe(true)
    expect(await back.whenClosed()).toMatchObject({ code: 4003, reason: 'closed from leaf 1' })
    expect(await part(room, 1).send(subject.id, 'too late')).toBe(false)
    expect(await part(room, 1).close(subject.id)).toBe(false)
    for (const session of [other, far]) session.close(1000)
  })

  it('follows a second move: what was sent to it while away from its second leaf reaches it on its third, once', async () => {
    const room = 'moves-twice'
    const { subject, other, far, moved: second } = await movedToLeaf2(room)
    // Using the new socket confirms its token, which now names leaf 2.
    second.send('keep:a')
    expect(await second.nextPayload()).toBe('kept:a')
    await second.drop(part(room, 2))
    const missed = await missWhileAway(room, second, other, far)

    const third = await second.resume(`/shards/${room}?tag=blue`, { via: part(room, 3) })
    expect(third.welcome).toMatchObject({ id: subject.id, resumed: true })
    expect(third.position.token).toMatch(/^l3_/)
    expect((await inOrder(third, missed.length)).map((frame) => frame.payload)).toEqual(missed)
    expect(await third.nextPayload()).toBe(`open:${String(subject.id)}`)
    expect(await part(room).send(subject.id, 'on-three')).toBe(true)
    expect(await third.nextPayload()).toBe('on-three')
    await third.expectNothingWithin(100)
    expect(await part(room, 2).connectionIds()).toEqual([])
    expect(await part(room, 3).connectionIds()).toEqual([subject.id])
    expect(await part(room).close(subject.id, 4002, 'third leaf')).toBe(true)
    expect(await third.whenClosed()).toMatchObject({ code: 4002 })
    for (const session of [other, far]) session.close(1000)
  })

  it("starts a new session instead of replaying with a hole when the root's log no longer reaches its client's position", async () => {
    const room = 'moves-trimmed'
    const subject = await SessionClient.open(`/shards/${room}`)
    expect(await subject.nextPayload()).toBe(`open:${String(subject.id)}`)
    await part(room).broadcast('early')
    expect(await subject.nextPayload()).toBe('early')
    await subject.drop(part(room, 0))
    expect(await part(room).send(subject.id, 'lost')).toBe(true)
    // 1,060 rows for a plain socket on another leaf push 'lost' out of the root's log (maxMessages
    // 1,000); leaf 2 is sent none of them, and never had 'lost'.
    const busy = await connect(`/shards/${room}`)
    const id = Number((await busy.nextText()).slice('open:'.length))
    expect(await part(room, 2).connectionIds()).not.toContain(id)
    for (let n = 0; n < 1_060; n += 20)
      await Promise.all(
        Array.from({ length: 20 }, (_, k) => part(room).send(id, `for-busy:${String(n + k)}`)),
      )
    // Its leaf falls behind the trimmed log too and skips what is gone; the last row comes all the same.
    while ((await busy.nextText()) !== 'for-busy:1059');

    const back = await subject.resume(`/shards/${room}`, { via: part(room, 2) })
    expect(back.resumed).toBe(false)
    expect(back.id).not.toBe(subject.id)
    expect(await back.nextPayload()).toBe(`open:${String(back.id)}`)
    expect(await part(room).send(subject.id, 'gone')).toBe(false)
    back.close(1000)
    busy.close(1000)
  })
})
