import { env } from 'cloudflare:workers'
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { DurableWebSocketError, websocket } from '../../src/index.js'
import { BRIEF_WINDOW_MS } from './fixture/endpoints/sessions.js'
import {
  PRESENCE_MAX_META_BYTES,
  briefPresence,
  presence,
  type PresenceObject,
} from './fixture/endpoints/presence.js'
import { Client, leave, sleep, upgrade } from './client.js'
import { closesDelivered } from './closesOf.js'
import { SessionClient, evictWithSockets } from './sessionClient.js'
import { thrownBy } from './thrownBy.js'
import { sessionsRoom } from './sessionFixture.js'

/** Long enough for a frame that is owed to come; a frame that is not owed would have come by then. */
const QUIET_MS = 300

function presenceRoom(name: string): DurableObjectStub<PresenceObject> {
  return presence.room<PresenceObject>(env, name)
}

/** Typed as the long-window room: the two classes differ only in their module. */
function briefRoom(name: string): DurableObjectStub<PresenceObject> {
  return briefPresence.room<PresenceObject>(env, name)
}

/** A member as the frames and `members()` show it. */
function member(key: string, connections = 1, name = key) {
  return { key, meta: { name }, connections }
}

/** A session of `user` in `room` of `base`, with the list it got after its welcome. */
async function tab(room: string, user: string, base = '/presence') {
  const session = await SessionClient.open(`${base}/${room}?user=${user}`)
  const { frame } = await session.nextPresence()
  return { session, list: frame }
}

/** A plain socket of `user` in `room`. */
async function plainTab(room: string, user: string): Promise<Client> {
  const response = await upgrade(`/presence/${room}?user=${user}`)
  expect(response.status).toBe(101)
  return new Client(response.webSocket!)
}

describe('presence keyed by member', () => {
  it('counts two tabs of one user as one member with two connections', async () => {
    const room = presenceRoom('two-tabs')
    const first = await tab('two-tabs', 'alice')
    expect(first.list).toEqual({ kind: 'list', members: [member('alice')] })
    const second = await tab('two-tabs', 'alice')
    expect(second.list).toEqual({ kind: 'list', members: [member('alice', 2)] })
    expect((await first.session.nextPresence()).frame).toEqual({
      kind: 'diff',
      join: [],
      update: [member('alice', 2)],
      leave: [],
    })
    // The second tab got the whole list in the turn it was accepted, and no diff of its own arrival.
    await second.session.expectNoPresenceWithin(QUIET_MS)
    expect(await room.members()).toEqual([member('alice', 2)])
    await leave(first.session.client, second.session.client)
  })

  it('keeps the member while one of its tabs is open, and lets it leave with the last', async () => {
    const room = presenceRoom('last-tab')
    const bob = await tab('last-tab', 'bob')
    const one = await tab('last-tab', 'alice')
    const two = await tab('last-tab', 'alice')
    expect((await bob.session.nextPresence()).frame).toMatchObject({ join: [member('alice')] })
    expect((await bob.session.nextPresence()).frame).toMatchObject({ update: [member('alice', 2)] })
    one.session.close(1000)
    await one.session.whenClosed()
    expect((await bob.session.nextPresence()).frame).toEqual({
      kind: 'diff',
      join: [],
      update: [member('alice', 1)],
      leave: [],
    })
    two.session.close(1000)
    await two.session.whenClosed()
    expect((await bob.session.nextPresence()).raw).toBe('{"t":"presence","leave":["alice"]}')
    expect(await room.members()).toEqual([member('bob')])
    await leave(bob.session.client)
  })

  it('makes a dropped session that resumes within its window neither leave nor join', async () => {
    const room = presenceRoom('resumed')
    const bob = await tab('resumed', 'bob')
    const alice = await tab('resumed', 'alice')
    await bob.session.nextPresence()
    await alice.session.drop(room)
    await bob.session.expectNoPresenceWithin(QUIET_MS)
    expect(await room.members()).toEqual([member('bob'), member('alice')])
    const again = await alice.session.resume('/presence/resumed?user=alice')
    expect(again.resumed).toBe(true)
    // A resume gets the whole list again, not a replay of what it missed.
    expect((await again.nextPresence()).frame).toEqual({
      kind: 'list',
      members: [member('bob'), member('alice')],
    })
    await bob.session.expectNoPresenceWithin(QUIET_MS)
    await leave(bob.session.client, again.client)
  })

  it('lets a dropped session leave once its window ends without a resume', async () => {
    const room = briefRoom('expired')
    const bob = await tab('expired', 'bob', '/brief-presence')
    const alice = await tab('expired', 'alice', '/brief-presence')
    await bob.session.nextPresence()
    await alice.session.drop(room)
    await sleep(BRIEF_WINDOW_MS + 50)
    // The runtime may have run the alarm already; then this one finds none to run.
    await runDurableObjectAlarm(room)
    expect((await bob.session.nextPresence()).raw).toBe('{"t":"presence","leave":["alice"]}')
    expect(await room.members()).toEqual([member('bob')])
    await leave(bob.session.client)
  })

  it('announces that leave when the alarm that ends the session is what wakes the hibernated object', async () => {
    const room = briefRoom('expired-asleep')
    const bob = await tab('expired-asleep', 'bob', '/brief-presence')
    const alice = await tab('expired-asleep', 'alice', '/brief-presence')
    await bob.session.nextPresence()
    await alice.session.drop(room)
    // Bob's socket stays; the object leaves memory, and the alarm finds a roster it has not read.
    await evictDurableObject(room, { webSockets: 'hibernate' })
    await sleep(BRIEF_WINDOW_MS + 50)
    await runDurableObjectAlarm(room)
    expect((await bob.session.nextPresence()).raw).toBe('{"t":"presence","leave":["alice"]}')
    await leave(bob.session.client)
  })

  it('keeps the list across an eviction: every session resumes to the same list, and nobody sees a change', async () => {
    const room = presenceRoom('evicted')
    const bob = await tab('evicted', 'bob')
    const alice = await tab('evicted', 'alice')
    await bob.session.nextPresence()
    const before = alice.list
    await evictWithSockets(room, bob.session, alice.session)
    const bobAgain = await bob.session.resume('/presence/evicted?user=bob')
    const aliceAgain = await alice.session.resume('/presence/evicted?user=alice')
    expect(bobAgain.resumed && aliceAgain.resumed).toBe(true)
    expect((await bobAgain.nextPresence()).frame).toEqual(before)
    expect((await aliceAgain.nextPresence()).frame).toEqual(before)
    await bobAgain.expectNoPresenceWithin(QUIET_MS)
    await aliceAgain.expectNoPresenceWithin(0)
    expect(await room.members()).toEqual([member('bob'), member('alice')])
    await leave(bobAgain.client, aliceAgain.client)
  })

  it('sends the changes of one turn as one frame', async () => {
    const carol = await tab('one-turn', 'carol')
    const bob = await tab('one-turn', 'bob')
    const alice = await tab('one-turn', 'alice')
    await carol.session.nextPresence()
    await carol.session.nextPresence()
    bob.session.send(`rename-and-close:Robert:${String(alice.session.id)}`)
    expect((await carol.session.nextPresence()).raw).toBe(
      '{"t":"presence","update":[{"key":"bob","meta":{"name":"Robert"},"connections":1}],"leave":["alice"]}',
    )
    await carol.session.expectNoPresenceWithin(QUIET_MS)
    await leave(carol.session.client, bob.session.client)
  })

  it('counts plain connections too, joining at open and leaving at close, and sends them nothing', async () => {
    const room = presenceRoom('plain')
    const bob = await tab('plain', 'bob')
    const plain = await plainTab('plain', 'dave')
    expect((await bob.session.nextPresence()).frame).toMatchObject({ join: [member('dave')] })
    plain.send('whoami')
    expect(await plain.nextText()).toBe('me:dave')
    plain.close(1000)
    await plain.whenClosed()
    expect((await bob.session.nextPresence()).frame).toMatchObject({ leave: ['dave'] })
    expect(await room.members()).toEqual([member('bob')])
    await leave(bob.session.client)
  })

  it('broadcasts a metadata update as an update of the member', async () => {
    const bob = await tab('meta', 'bob')
    const alice = await tab('meta', 'alice')
    await bob.session.nextPresence()
    alice.session.send('meta:{"name":"Alice","away":true}')
    expect(await alice.session.nextPayload()).toBe('meta:ok')
    expect((await bob.session.nextPresence()).frame).toMatchObject({
      update: [{ key: 'alice', meta: { name: 'Alice', away: true }, connections: 1 }],
    })
    await leave(bob.session.client, alice.session.client)
  })

  it('refuses a new member past maxMembers (a session gets 1013, a plain socket 503), and still takes a member already in', async () => {
    const room = 'full'
    const tabs = [await tab(room, 'a'), await tab(room, 'b'), await tab(room, 'c')]
    const refused = await upgrade(`/presence/${room}?user=d`, { 'Sec-WebSocket-Protocol': 'dws.session.v1' })
    expect(refused.status).toBe(101)
    const refusedClient = new Client(refused.webSocket!)
    expect(await refusedClient.whenClosed()).toMatchObject({ code: 1013, reason: 'retry after 30000 ms' })
    const plain = await upgrade(`/presence/${room}?user=d`)
    expect(plain.status).toBe(503)
    expect(plain.headers.get('Retry-After')).toBe('30')
    const another = await tab(room, 'a')
    expect(another.list).toMatchObject({ members: [member('a', 2), member('b'), member('c')] })
    await leave(...tabs.map((t) => t.session.client), another.session.client)
  })

  it('refuses metadata over maxMetaBytes with ERR_DWS_PRESENCE_META_TOO_LARGE, from update() and from the meta option', async () => {
    const alice = await tab('too-large', 'alice')
    alice.session.send(`meta:{"name":"${'x'.repeat(PRESENCE_MAX_META_BYTES)}"}`)
    expect(await alice.session.nextPayload()).toBe('meta:ERR_DWS_PRESENCE_META_TOO_LARGE')
    alice.session.send('meta:[1,2]')
    expect(await alice.session.nextPayload()).toBe('meta:ERR_DWS_INVALID_PRESENCE_META')
    // The meta option's mistake refuses the upgrade (500), and the error is logged with its code.
    const refused = await upgrade(`/presence/too-large?user=bob&name=${'y'.repeat(PRESENCE_MAX_META_BYTES)}`)
    expect(refused.status).toBe(500)
    await leave(alice.session.client)
  })

  it('throws ERR_DWS_PRESENCE_OFF from members() (manager.presence) where the option is off', async () => {
    const code = await runInDurableObject(
      sessionsRoom('no-presence'),
      (instance) => (thrownBy(() => instance.members()) as { code?: unknown }).code,
    )
    expect(code).toBe('ERR_DWS_PRESENCE_OFF')
  })

  it('throws ERR_DWS_INVALID_OPTIONS for a presence option without a key function or with bad limits', () => {
    for (const option of [
      {},
      { key: 'user' },
      { key: () => 'k', maxMembers: 0 },
      { key: () => 'k', maxMetaBytes: 1.5 },
    ]) {
      const error = thrownBy(() => websocket({ binding: 'PRESENCE_TEST', presence: option as never }))
      expect(error).toBeInstanceOf(DurableWebSocketError)
      expect(error).toMatchObject({ code: 'ERR_DWS_INVALID_OPTIONS' })
      expect((error as Error).message).toContain('presence')
    }
  })

  it('keeps every member, plain ones too, across hibernation, and tells nobody', async () => {
    const room = presenceRoom('hibernated')
    const bob = await tab('hibernated', 'bob')
    const plain = await plainTab('hibernated', 'dave')
    await bob.session.nextPresence()
    await evictDurableObject(room, { webSockets: 'hibernate' })
    expect(await room.members()).toEqual([member('bob'), member('dave')])
    plain.send('whoami')
    expect(await plain.nextText()).toBe('me:dave')
    await bob.session.expectNoPresenceWithin(QUIET_MS)
    await leave(bob.session.client, plain)
  })

  it('leaves no member behind for a plain socket the object lost in a restart', async () => {
    const room = presenceRoom('restarted-plain')
    const plain = await plainTab('restarted-plain', 'dave')
    plain.send('whoami')
    expect(await plain.nextText()).toBe('me:dave')
    const bob = await tab('restarted-plain', 'bob')
    await evictWithSockets(room, bob.session)
    await plain.whenClosed()
    await closesDelivered(room)
    const again = await bob.session.resume('/presence/restarted-plain?user=bob')
    expect((await again.nextPresence()).frame).toEqual({ kind: 'list', members: [member('bob')] })
    await leave(again.client)
  })
})
