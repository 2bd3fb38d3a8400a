import { evictDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { MAX_SHARDS } from '../../src/shardOptions.js'
import { DurableWebSocketError, websocket } from '../../src/index.js'
import { hashToken } from '../../src/object/session/tokens.js'
import { numbered } from '../../src/shared/dataFrames.js'
import { resumeEntry, SESSION_PROTOCOL } from '../../src/shared/sessionProtocol.js'
import { Client, connect, leave, sleep } from './client.js'
import { SHARD_COUNT, SOCKETS_PER_SHARD } from './fixture/endpoints/shards.js'
import { SessionClient } from './sessionClient.js'
import { thrownBy } from './thrownBy.js'
import { part, joinAll } from './shardParts.js'

async function texts(client: Client, count: number): Promise<string[]> {
  const found: string[] = []
  while (found.length < count) found.push(await client.nextText())
  return found
}

/** Broadcasts a last message through the root and checks it comes next: nothing else was owed. */
async function expectNothingBefore(room: string, clients: Client[]): Promise<void> {
  await part(room).broadcast('end')
  for (const client of clients) expect(await client.nextText()).toBe('end')
}

describe('a room spread over leaves (options.shards)', () => {
  it('throws ERR_DWS_INVALID_OPTIONS for shards without a count or a share, past 64 leaves, or beside presence', () => {
    for (const options of [
      { shards: 4 },
      { shards: { count: 4 } },
      { shards: { count: 0, socketsPerShard: 10 } },
      { shards: { count: 65, socketsPerShard: 10 } },
      { shards: { count: 2, socketsPerShard: 1.5 } },
      { shards: { count: 2, socketsPerShard: 10 }, presence: { key: () => 'k' } },
    ]) {
      const error = thrownBy(() => websocket({ binding: 'SHARDS_TEST', ...(options as object) }))
      expect(error).toBeInstanceOf(DurableWebSocketError)
      expect(error).toMatchObject({ code: 'ERR_DWS_INVALID_OPTIONS' })
    }
  })

  it('places each upgrade on the first leaf with room, and hands out ids no other leaf hands out', async () => {
    const { clients, ids } = await joinAll('placed', SHARD_COUNT * SOCKETS_PER_SHARD)
    // Leaf n hands out n+1, n+1+64, …: two per leaf, filled in order.
    expect(ids).toEqual([1, 65, 2, 66, 3, 67, 4, 68])
    for (let leaf = 0; leaf < SHARD_COUNT; leaf++)
      expect((await part('placed', leaf).connectionIds()).sort()).toEqual([leaf + 1, leaf + 1 + MAX_SHARDS])
    expect(await part('placed').connectionIds()).toEqual([])
    await leave(...clients)
  })

  it('delivers the broadcasts of handlers on every leaf to every socket once, all in the same order', async () => {
    const { clients } = await joinAll('order', SHARD_COUNT * SOCKETS_PER_SHARD)
    clients.forEach((client, n) => {
      for (let k = 1; k <= 3; k++) client.send(`all:${String(n)}.${String(k)}`)
    })
    const seen = await Promise.all(clients.map((client) => texts(client, clients.length * 3)))
    const [first = []] = seen
    expect(new Set(first).size).toBe(clients.length * 3)
    for (const other of seen) expect(other).toEqual(first)
    // Each sender's own messages keep the order it sent them in.
    clients.forEach((_client, n) => {
      const own = first.filter((text) => text.startsWith(`all:${String(n)}.`))
      expect(own).toEqual([1, 2, 3].map((k) => `all:${String(n)}.${String(k)}`))
    })
    await expectNothingBefore('order', clients)
    await leave(...clients)
  })

  it('numbers a broadcast over RPC to the room at the root, which keeps the log in that order', async () => {
    const { clients } = await joinAll('rpc', 3)
    await part('rpc').broadcast('one')
    await part('rpc').broadcast('two')
    for (const client of clients) expect(await texts(client, 2)).toEqual(['one', 'two'])
    expect(await part('rpc').logged()).toEqual([
      [1, 'one'],
      [2, 'two'],
    ])
    await leave(...clients)
  })

  it('sends each leaf one batch for everything a turn broadcast, not one call per message', async () => {
    const { clients } = await joinAll('batched', SHARD_COUNT * SOCKETS_PER_SHARD)
    clients[0]?.send('burst:20:b')
    const expected = Array.from({ length: 20 }, (_, n) => `b.${String(n + 1)}`)
    for (const client of clients) expect(await texts(client, 20)).toEqual(expected)
    for (let leaf = 0; leaf < SHARD_COUNT; leaf++)
      expect(await part('batched', leaf).batches()).toEqual(['1..20'])
    await leave(...clients)
  })

  it('gives a leaf a batch again when the call failed, and the leaf drops what it had applied already', async () => {
    const { clients } = await joinAll('retried', SHARD_COUNT * SOCKETS_PER_SHARD)
    // Leaf 1 applies the first batch but its answer is lost; the second is lost before it arrives.
    await part('retried', 1).failNext('after', 'before')
    clients[0]?.send('all:x')
    for (const client of clients) expect(await client.nextText()).toBe('all:x')
    clients[6]?.send('all:y')
    for (const client of clients) expect(await client.nextText()).toBe('all:y')
    await expectNothingBefore('retried', clients)
    const batches = await part('retried', 1).batches()
    // The root sent from 1 until the leaf confirmed it: number 1 came again, and was dropped, not delivered twice.
    expect(batches.filter((batch) => batch.startsWith('1..')).length).toBeGreaterThanOrEqual(3)
    await leave(...clients)
  })

  it('applies to(tag) and except on every leaf: a tagged socket anywhere gets it, the excluded sender does not', async () => {
    const tagged: Client[] = []
    const plain: Client[] = []
    for (let n = 0; n < SHARD_COUNT * SOCKETS_PER_SHARD; n++) {
      const odd = n % 2 === 1
      const client = await connect(`/shards/tagged${odd ? '?tag=odd' : ''}`)
      await client.nextText()
      ;(odd ? tagged : plain).push(client)
    }
    plain[0]?.send('to:odd:hi')
    for (const client of tagged) expect(await client.nextText()).toBe('to:odd:hi')
    tagged[3]?.send('others:bye')
    for (const client of [...plain, ...tagged.slice(0, 3)]) expect(await client.nextText()).toBe('others:bye')
    await expectNothingBefore('tagged', [...plain, ...tagged])
    await leave(...plain, ...tagged)
  })

  it('remembers across a restart what it applied: a copy of an old batch delivers nothing to its hibernated sockets', async () => {
    const { clients } = await joinAll('restarted', 4)
    await part('restarted').broadcast('one')
    await part('restarted').broadcast('two')
    for (const client of clients) expect(await texts(client, 2)).toEqual(['one', 'two'])
    await evictDurableObject(part('restarted', 1), { webSockets: 'hibernate' })
    const copy = [1, 2].map((seq) => ({
      seq,
      target: null,
      tag: null,
      except: null,
      frame: 'copy',
      mark: '',
    }))
    expect(await part('restarted', 1).shardApply({ from: 1, through: 2, messages: copy })).toBe(2)
    await expectNothingBefore('restarted', clients)
    await leave(...clients)
  })

  it("catches a leaf up from the root's log when a batch starts past the last number it applied", async () => {
    const { clients } = await joinAll('caught-up', 4)
    const leaf = part('caught-up', 1)
    await leaf.failNext('gap')
    clients[0]?.send('burst:3:m')
    // Leaf 1 was handed 2..3 as 1..3: it asked the root for 1 first, and delivered all three in order.
    for (const client of clients) expect(await texts(client, 3)).toEqual(['m.1', 'm.2', 'm.3'])
    await expectNothingBefore('caught-up', clients)
    await leave(...clients)
  })
})

describe('sessions in a sharded room', () => {
  it("numbers every message to a session with the root's number, the same on every leaf", async () => {
    const sessions: SessionClient[] = []
    for (let n = 0; n < 3; n++) sessions.push(await SessionClient.open('/shards/numbered'))
    // Even a send to one session is numbered by the root: the greetings take 1, 2 and 3.
    const greetings = await Promise.all(sessions.map((session) => session.next()))
    expect(greetings.map((frame) => frame.seq).sort()).toEqual([1, 2, 3])
    for (const [n, session] of sessions.entries())
      expect(greetings[n]?.payload).toBe(`open:${String(session.id)}`)
    await part('numbered').broadcast('hello')
    for (const session of sessions) expect(await session.next()).toEqual({ seq: 4, payload: 'hello' })
    for (const session of sessions) session.close(1000)
  })

  it('resumes a dropped session on its leaf with what it missed, once and in order', async () => {
    const first = await SessionClient.open('/shards/resumed')
    const second = await SessionClient.open('/shards/resumed')
    const third = await SessionClient.open('/shards/resumed')
    for (const session of [first, second, third]) await session.next()
    // The third session is the only one on leaf 1.
    expect(await part('resumed', 1).connectionIds()).toEqual([third.id])
    await third.drop(part('resumed', 1))
    await part('resumed').broadcast('missed-1')
    first.send('all:missed-2')
    expect(await first.payloads(2)).toEqual(['missed-1', 'all:missed-2'])
    const back = await third.resume('/shards/resumed')
    expect(back.resumed).toBe(true)
    const missed = [await back.next(), await back.next()]
    expect(missed.map((frame) => frame.payload)).toEqual(['missed-1', 'all:missed-2'])
    expect(missed[1]?.seq).toBe((missed[0]?.seq ?? 0) + 1)
    // `open` runs again on a resume, and greets once more: numbered by the root like everything else.
    await part('resumed').broadcast('after')
    const rest = [await back.next(), await back.next()]
    expect(rest.map((frame) => frame.payload).sort()).toEqual(['after', `open:${String(third.id)}`])
    expect(rest.map((frame) => frame.seq)).toEqual([(missed[1]?.seq ?? 0) + 1, (missed[1]?.seq ?? 0) + 2])
    await back.expectNothingWithin(100)
    for (const session of [first, second, back]) session.close(1000)
  })

  it('answers a request with a reply the root numbered, marked with the request it answers', async () => {
    const first = await SessionClient.open('/shards/replies')
    const second = await SessionClient.open('/shards/replies')
    const third = await SessionClient.open('/shards/replies')
    for (const session of [first, second, third]) await session.next()
    const c = third.request('question')
    expect(await third.next()).toMatchObject({
      seq: 4,
      payload: 're:question',
      mark: { type: 'reply', to: c },
    })
    for (const session of [first, second, third]) session.close(1000)
  })

  it('sends a resume back to the leaf that holds its session, though a new upgrade would go to an earlier one', async () => {
    const first = await SessionClient.open('/shards/home')
    const second = await SessionClient.open('/shards/home')
    const third = await SessionClient.open('/shards/home')
    for (const session of [first, second, third]) await session.next()
    expect(third.position.token).toMatch(/^l1_/)
    await third.drop(part('home', 1))
    // Leaf 0 has room again: a new session would be placed there, but the resume goes to leaf 1.
    first.close(1000)
    await first.whenClosed()
    await part('home').broadcast('missed')
    const back = await third.resume('/shards/home')
    expect(back.resumed).toBe(true)
    expect(await back.nextPayload()).toBe('missed')
    expect(await part('home', 1).connectionIds()).toEqual([third.id])
    for (const session of [second, back]) session.close(1000)
  })
})

/** Opens three sessions in `room`: two on leaf 0 (the first is the one a test moves), one on leaf 1; greetings read. */
async function threeSessions(path: string): Promise<[SessionClient, SessionClient, SessionClient]> {
  const sessions: SessionClient[] = []
  for (let n = 0; n < 3; n++) sessions.push(await SessionClient.open(path))
  for (const session of sessions) expect(await session.nextPayload()).toBe(`open:${String(session.id)}`)
  const [subject, other, far] = sessions as [SessionClient, SessionClient, SessionClient]
  return [subject, other, far]
}

/** Every leaf's open connection ids, together. */
async function idsOnEveryLeaf(room: string): Promise<number[]> {
  const ids: number[] = []
  for (let leaf = 0; leaf < SHARD_COUNT; leaf++) ids.push(...(await part(room, leaf).connectionIds()))
  return ids
}

describe('sessions resumed on another leaf than the one they left', () => {
  it('replays what it missed once and in order, then live messages, with its data and its handled mark moved along', async () => {
    const path = '/shards/moved'
    const [subject, other, far] = await threeSessions(path)
    expect((await part('moved', 0).connectionIds()).sort()).toEqual([subject.id, other.id].sort())
    const kept = subject.send('keep:a')
    expect(await subject.nextPayload()).toBe('kept:a')
    await subject.drop(part('moved', 0))
    // Missed: one broadcast numbered at the root, one from a handler on leaf 1.
    await part('moved').broadcast('missed-1')
    far.send('all:missed-2')
    for (const session of [other, far])
      expect(await session.payloads(2)).toEqual(['missed-1', 'all:missed-2'])

    const back = await subject.resume(path, { via: part('moved', 2) })
    expect(back.welcome).toMatchObject({ id: subject.id, resumed: true, handled: kept })
    expect(back.position.token).toMatch(/^l2_/)
    const missed = [await back.next(), await back.next()]
    expect(missed.map((frame) => frame.payload)).toEqual(['missed-1', 'all:missed-2'])
    expect(missed[1]?.seq).toBe((missed[0]?.seq ?? 0) + 1)
    await part('moved').broadcast('after')
    const rest = [await back.next(), await back.next()]
    expect(rest.map((frame) => frame.payload).sort()).toEqual(['after', `open:${String(subject.id)}`])

    // The message handled on leaf 0, sent again: dropped, not run again; `conn.data` came along.
    back.sendRaw(numbered(kept, 'keep:a') as string)
    back.send('keep:b')
    expect(await back.nextPayload()).toBe('kept:ab')
    await back.expectNothingWithin(100)

    // Leaf 0 forgot it: no socket, and no suspended session (a close made there goes to leaf 2 now).
    expect(await part('moved', 0).connectionIds()).toEqual([other.id])
    expect(await part('moved', 0).shardHolds(subject.id)).toBe(false)
    expect(await part('moved', 2).connectionIds()).toEqual([subject.id])
    for (const session of [other, far]) expect(await session.payloads(1)).toEqual(['after'])
    for (const session of [other, far, back]) session.close(1000)
  })

  it('closes the socket that still carries the session on its first leaf with 3901 when it resumes on another', async () => {
    const path = '/shards/taken'
    const [subject, other, far] = await threeSessions(path)
    // No drop: the old socket still looks open, as a half-dead connection does.
    const back = await subject.resume(path, { via: part('taken', 3) })
    expect(back.welcome).toMatchObject({ id: subject.id, resumed: true })
    expect(await subject.whenClosed()).toMatchObject({ code: 3901 })
    expect(await part('taken', 0).connectionIds()).toEqual([other.id])
    expect(await part('taken', 3).connectionIds()).toEqual([subject.id])
    await part('taken').broadcast('one')
    const payloads = await back.payloads(2)
    expect(payloads.sort()).toEqual(['one', `open:${String(subject.id)}`])
    await back.expectNothingWithin(100)
    for (const session of [other, far, back]) session.close(1000)
  })

  it('waits for a handler still running on the first leaf: its message counts as handled and its data moves', async () => {
    const path = '/shards/running'
    const [subject, other, far] = await threeSessions(path)
    const held = subject.send('holdkeep:g:a')
    // The socket is still open and the handler still running when the resume lands on leaf 2.
    const resuming = subject.resume(path, { via: part('running', 2) })
    // Closed by the claim, which now waits for the handler.
    expect(await subject.whenClosed()).toMatchObject({ code: 3901 })
    await part('running', 0).release('g')
    const back = await resuming
    expect(back.welcome).toMatchObject({ id: subject.id, resumed: true, handled: held })
    expect((await back.payloads(2)).sort()).toEqual(['kept:a', `open:${String(subject.id)}`])
    back.send('keep:b')
    expect(await back.nextPayload()).toBe('kept:ab')
    await back.expectNothingWithin(100)
    for (const session of [other, far, back]) session.close(1000)
  })

  it('holds a resume that reaches the first leaf while the session is on its way out, and the session ends up on one leaf', async () => {
    const path = '/shards/crossing'
    const [subject, other, far] = await threeSessions(path)
    const held = subject.send('holdkeep:g:a')
    const toLeaf2 = subject.resume(path, { via: part('crossing', 2) })
    expect(await subject.whenClosed()).toMatchObject({ code: 3901 })
    // Leaf 0 is waiting for the handler; the same token comes back to it (the Worker sends it home).
    const home = subject.resume(path)
    // Nothing to watch for while leaf 0 holds it back: give the upgrade time to get there.
    await sleep(200)
    await part('crossing', 0).release('g')
    const resumes = await Promise.all([toLeaf2, home])
    const holders: number[] = []
    for (let leaf = 0; leaf < SHARD_COUNT; leaf++)
      if ((await part('crossing', leaf).connectionIds()).includes(subject.id)) holders.push(leaf)
    expect(holders).toHaveLength(1)
    const winner = holders[0] === 2 ? resumes[0] : resumes[1]
    expect(winner.welcome).toMatchObject({ id: subject.id, resumed: true, handled: held })
    winner.send('keep:b')
    const payloads: string[] = []
    while (!payloads.includes('kept:ab')) payloads.push(await winner.nextPayload())
    // The held handler's own reply is owed too, once: `a` ran once, and its data moved.
    expect(payloads.filter((text) => text.startsWith('kept:'))).toEqual(['kept:a', 'kept:ab'])
    for (const session of [other, far, ...resumes]) session.close(1000)
  })

  it('refuses a later resume with the token the move retired: a new session starts, and the moved one stays open', async () => {
    const path = '/shards/retired'
    const [subject, other, far] = await threeSessions(path)
    await subject.drop(part('retired', 0))
    const back = await subject.resume(path, { via: part('retired', 2) })
    expect(back.resumed).toBe(true)
    expect(await back.nextPayload()).toBe(`open:${String(subject.id)}`)
    // Using the new socket confirms the new token: the old one retires.
    back.send('keep:x')
    expect(await back.nextPayload()).toBe('kept:x')

    // The old token names leaf 0, which follows the session to leaf 2, which no longer takes that token.
    const stale = await subject.resume(path)
    expect(stale.resumed).toBe(false)
    expect(stale.id).not.toBe(subject.id)
    expect(await stale.nextPayload()).toBe(`open:${String(stale.id)}`)
    await part('retired').broadcast('still')
    expect(await back.nextPayload()).toBe('still')
    expect(await stale.nextPayload()).toBe('still')
    expect((await idsOnEveryLeaf('retired')).filter((id) => id === subject.id)).toEqual([subject.id])
    for (const session of [other, far, back, stale]) session.close(1000)
  })

  it('hands a session to exactly one of two leaves that claim it at once; the other is told where it went', async () => {
    const [subject] = await threeSessions('/shards/raced')
    await subject.drop(part('raced', 0))
    const hash = await hashToken(subject.position.token)
    const answers = await Promise.all([
      part('raced', 0).shardClaim(hash, 'anyone', 1),
      part('raced', 0).shardClaim(hash, 'anyone', 2),
    ])
    expect(answers.map((answer) => answer.kind).sort()).toEqual(['handed', 'moved'])
    const winner = answers[0].kind === 'handed' ? 1 : 2
    expect(answers.find((answer) => answer.kind === 'moved')).toEqual({ kind: 'moved', leaf: winner })
    expect(answers.find((answer) => answer.kind === 'handed')).toMatchObject({
      session: { id: subject.id, owner: 'anyone' },
    })
  })

  it('ends up on one leaf when two resumes of the same session land on two leaves at once', async () => {
    const path = '/shards/racing'
    const [subject, other, far] = await threeSessions(path)
    await subject.drop(part('racing', 0))
    const resumes = await Promise.all([
      subject.resume(path, { via: part('racing', 1) }),
      subject.resume(path, { via: part('racing', 2) }),
    ])
    expect((await idsOnEveryLeaf('racing')).filter((id) => id === subject.id)).toEqual([subject.id])
    const onLeaf1 = (await part('racing', 1).connectionIds()).includes(subject.id)
    const [winner, loser] = onLeaf1 ? resumes : [resumes[1], resumes[0]]
    expect(winner.resumed).toBe(true)
    // The loser either never got the session (a new one), or had it and was taken over.
    if (loser.resumed) expect(await loser.whenClosed()).toMatchObject({ code: 3901 })
    else expect(loser.id).not.toBe(subject.id)
    for (const session of [other, far, ...resumes]) session.close(1000)
  })

  it('follows a session that moved: a resume with its unconfirmed previous token, sent to its first leaf, takes it back', async () => {
    const path = '/shards/followed'
    const [subject, other, far] = await threeSessions(path)
    await subject.drop(part('followed', 0))
    const moved = await subject.resume(path, { via: part('followed', 2) })
    expect(moved.resumed).toBe(true)
    const greeting = await moved.nextPayload()
    // Cut before the client used the new socket: it still only knows its old token, which names leaf 0.
    await moved.drop(part('followed', 2))
    await part('followed').broadcast('between')
    const back = await subject.resume(path)
    expect(back.welcome).toMatchObject({ id: subject.id, resumed: true })
    expect(back.position.token).toMatch(/^l0_/)
    expect(await back.payloads(3)).toEqual([greeting, 'between', `open:${String(subject.id)}`])
    expect(await part('followed', 2).connectionIds()).toEqual([])
    expect((await part('followed', 0).connectionIds()).sort()).toEqual([subject.id, other.id].sort())
    for (const session of [other, far, back]) session.close(1000)
  })

  it("refuses another owner's resume on another leaf with 3904, and leaves the session where it was", async () => {
    const path = '/shards/owned'
    const [subject, other, far] = await threeSessions(`${path}?user=ann`)
    await subject.drop(part('owned', 0))
    const response = await part('owned', 2).fetch(
      new Request('http://fixture.test/shards/owned?user=mallory', {
        headers: {
          Upgrade: 'websocket',
          'Sec-WebSocket-Protocol': `${SESSION_PROTOCOL}, ${resumeEntry(subject.position)}`,
        },
      }),
    )
    if (response.webSocket === null) throw new Error('a 101 without a socket')
    expect(await new Client(response.webSocket).whenClosed()).toMatchObject({ code: 3904 })
    expect(await part('owned', 2).connectionIds()).toEqual([])
    const back = await subject.resume(`${path}?user=ann`)
    expect(back.welcome).toMatchObject({ id: subject.id, resumed: true })
    expect(await part('owned', 0).connectionIds()).toContain(subject.id)
    for (const session of [other, far, back]) session.close(1000)
  })

  it('places a resume whose leaf is full on another leaf, which claims the session', async () => {
    const path = '/shards/crowded'
    const [subject, other, far] = await threeSessions(path)
    await subject.drop(part('crowded', 0))
    // A new session takes the place the dropped one left on leaf 0 (handed to it straight, whatever
    // leaf the Worker's placement would try first).
    const newcomer = await SessionClient.open(path, { via: part('crowded', 0) })
    expect(await part('crowded', 0).connectionIds()).toContain(newcomer.id)
    await part('crowded').broadcast('missed')
    const back = await subject.resume(path)
    expect(back.welcome).toMatchObject({ id: subject.id, resumed: true })
    expect(await back.nextPayload()).toBe('missed')
    expect(await part('crowded', 1).connectionIds()).toContain(subject.id)
    expect(await part('crowded', 0).connectionIds()).not.toContain(subject.id)
    for (const session of [other, far, newcomer, back]) session.close(1000)
  })
})
