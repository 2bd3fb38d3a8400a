import { env } from 'cloudflare:workers'
import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest'
import { DEFAULT_ROOM, MAX_TAG_LENGTH, MAX_TAGS } from '../../src/index.js'
import { fanout, type FanoutObject } from './fixture/endpoints/fanout.js'
import { closesDelivered } from './closesOf.js'
import { connect, eventually, leave, request, sleep, upgrade, type Client } from './client.js'

/** What the fixture's serializer puts on the wire: the value, stamped with the encode() call that made it. */
interface Stamped<T = Record<string, unknown>> {
  encoding: number
  value: T
}

interface Greeting {
  id: number
  tags: string[]
}

interface Fanned {
  from: number
  text: string
}

/** Long enough for a frame that should not come, had one been sent, to arrive. */
const SETTLE_MS = 100

afterEach(() => {
  vi.restoreAllMocks()
})

function roomOf(name: string): DurableObjectStub<FanoutObject> {
  return fanout.room<FanoutObject>(env, name)
}

async function join(
  room: string,
  query = '',
  headers: Record<string, string> = {},
): Promise<{ client: Client } & Greeting> {
  const client = await connect(`/fanout/${room}${query}`, headers)
  return { client, ...(await client.nextJson<Stamped<Greeting>>()).value }
}

async function next<T = Record<string, unknown>>(client: Client): Promise<Stamped<T>> {
  return client.nextJson<Stamped<T>>()
}

/** Sends a command and returns the value of the next frame, which must be its answer. */
async function command<T = Record<string, unknown>>(client: Client, value: unknown): Promise<T> {
  client.sendJson(value)
  return (await next<T>(client)).value
}

/** After SETTLE_MS the next frame is the answer to a question, so nothing else was sent to `client`. */
async function expectNothingMore(...clients: Client[]): Promise<void> {
  await sleep(SETTLE_MS)
  for (const client of clients) expect(await command(client, { op: 'whoami' })).toHaveProperty('tags')
}

describe('manager.broadcast(message, { except })', () => {
  it('encodes the message once, sends it to every open connection and returns how many it reached', async () => {
    const members = [await join('b-all'), await join('b-all'), await join('b-all')]
    const [sender] = members
    sender!.client.sendJson({ op: 'broadcast', text: 'to all' })
    const frames = await Promise.all(members.map(({ client }) => next<Fanned>(client)))
    expect(frames.map(({ value }) => value)).toEqual(Array(3).fill({ from: sender!.id, text: 'to all' }))
    expect(new Set(frames.map(({ encoding }) => encoding)).size).toBe(1)
    expect((await next(sender!.client)).value).toEqual({ sent: 3 })
    await expectNothingMore(...members.map(({ client }) => client))
    await leave(...members.map(({ client }) => client))
  })

  it('leaves out the connection, or the connections, named in except', async () => {
    const [a, b, c] = [await join('b-except'), await join('b-except'), await join('b-except')]
    expect(await command(a.client, { op: 'broadcast', text: 'not to me', except: a.id })).toEqual({ sent: 2 })
    expect((await next(b.client)).value).toEqual({ from: a.id, text: 'not to me' })
    expect((await next(c.client)).value).toEqual({ from: a.id, text: 'not to me' })

    expect(await command(a.client, { op: 'broadcast', text: 'to c', except: [a.id, b.id] })).toEqual({
      sent: 1,
    })
    expect((await next(c.client)).value).toEqual({ from: a.id, text: 'to c' })
    await expectNothingMore(a.client, b.client, c.client)
    await leave(a.client, b.client, c.client)
  })

  it('closes a connection whose send throws with 1011, logs why, and goes on with the others', async () => {
    // An open socket whose send() throws cannot be provoked from an in-process client, so
    // the test breaks send() on one real socket inside the object; the rest is the real path.
    // The socket to break is found by a tag of its own.
    const [a, broken, c] = [await join('b-fail'), await join('b-fail', '?tag=broken'), await join('b-fail')]
    const logged = vi.spyOn(console, 'error')
    const sent = await runInDurableObject(roomOf('b-fail'), (instance, state) => {
      const [socket, ...others] = state.getWebSockets('broken')
      if (socket === undefined || others.length > 0) throw new Error('expected one socket tagged broken')
      Object.defineProperty(socket, 'send', {
        value: () => {
          throw new TypeError('the socket refused the frame')
        },
      })
      return instance.broadcast({ from: 0, text: 'despite one failure' })
    })
    expect(sent).toBe(2)
    expect((await next(a.client)).value).toEqual({ from: 0, text: 'despite one failure' })
    expect((await next(c.client)).value).toEqual({ from: 0, text: 'despite one failure' })
    expect(await broken.client.whenClosed()).toMatchObject({ code: 1011, reason: 'Internal Error' })
    expect(logged.mock.calls.map(([line]) => String(line))).toContainEqual(
      expect.stringContaining(`sending to connection ${String(broken.id)} in room b-fail failed`),
    )
    const closes = await eventually(
      () => roomOf('b-fail').log(),
      (log) => log.length > 0,
    )
    await closesDelivered(roomOf('b-fail'))
    expect(await roomOf('b-fail').log()).toEqual(closes)
    expect(closes).toEqual([{ event: 'close', id: broken.id, code: 1011, reason: 'Internal Error' }])
    expect(await roomOf('b-fail').ids()).toEqual([a.id, c.id])
    await leave(a.client, c.client)
  })
})

describe('tags: (request, locals) => string[]', () => {
  it('decides the tags at accept, from the request and the locals a middleware set, and conn.tags reads them', async () => {
    const admin = await join('t-decide', '?tag=red&tag=blue', { 'x-role': 'admin' })
    const plain = await join('t-decide')
    expect(admin.tags).toEqual(['red', 'blue', 'role:admin'])
    expect(plain.tags).toEqual([])
    expect(await roomOf('t-decide').tagsOf(admin.id)).toEqual(['red', 'blue', 'role:admin'])
    await leave(admin.client, plain.client)
  })

  it(`takes up to ${String(MAX_TAGS)} tags of up to ${String(MAX_TAG_LENGTH)} characters`, async () => {
    const many = Array.from({ length: MAX_TAGS }, (_, i) => `tag-${String(i)}`)
    const long = 'l'.repeat(MAX_TAG_LENGTH)
    const full = await join('t-limits', `?${many.map((tag) => `tag=${tag}`).join('&')}`)
    const wide = await join('t-limits', `?tag=${long}`)
    expect(full.tags).toEqual(many)
    expect(wide.tags).toEqual([long])
    await leave(full.client, wide.client)
  })

  it('fails the upgrade with a bare 500 for invalid tags, logs ERR_DWS_INVALID_TAGS and spends no id', async () => {
    const before = await join('t-invalid')
    const logged = vi.spyOn(console, 'error')
    const invalid = [
      Array.from({ length: MAX_TAGS + 1 }, (_, i) => `tag=t${String(i)}`).join('&'),
      `tag=${'l'.repeat(MAX_TAG_LENGTH + 1)}`,
      'tag=',
    ]
    for (const query of invalid) {
      logged.mockClear()
      const response = await upgrade(`/fanout/t-invalid?${query}`)
      expect(response.status).toBe(500)
      expect(response.webSocket).toBeNull()
      expect(await response.text()).toBe('Internal Server Error\n')
      expect(
        logged.mock.calls.some(([, error]) => (error as { code?: string }).code === 'ERR_DWS_INVALID_TAGS'),
      ).toBe(true)
    }
    const after = await join('t-invalid')
    expect(after.id).toBe(before.id + 1)
    expect(await roomOf('t-invalid').ids()).toEqual([before.id, after.id])
    await leave(before.client, after.client)
  })

  it('manager.to(tag).send encodes once and reaches only the open connections with the tag, except the given ids', async () => {
    const red = await join('t-to', '?tag=red')
    const both = await join('t-to', '?tag=red&tag=blue')
    const blue = await join('t-to', '?tag=blue')
    const none = await join('t-to')

    expect(await command(none.client, { op: 'to', tag: 'red', text: 'reds' })).toEqual({ sent: 2 })
    const frames = [await next<Fanned>(red.client), await next<Fanned>(both.client)]
    expect(frames.map(({ value }) => value)).toEqual(Array(2).fill({ from: none.id, text: 'reds' }))
    expect(frames[0]!.encoding).toBe(frames[1]!.encoding)

    const sent = await command(red.client, { op: 'to', tag: 'blue', text: 'blues', except: [blue.id] })
    expect(sent).toEqual({ sent: 1 })
    expect((await next(both.client)).value).toEqual({ from: red.id, text: 'blues' })

    expect(await command(red.client, { op: 'to', tag: 'nobody', text: 'void' })).toEqual({ sent: 0 })
    await expectNothingMore(red.client, both.client, blue.client, none.client)
    await leave(red.client, both.client, blue.client, none.client)
  })

  it('manager.connections(tag) holds only the open connections with the tag', async () => {
    const red = await join('t-conns', '?tag=red')
    const both = await join('t-conns', '?tag=red&tag=blue')
    const blue = await join('t-conns', '?tag=blue')
    expect(await command(blue.client, { op: 'tagged', tag: 'red' })).toEqual({ ids: [red.id, both.id] })
    expect(await roomOf('t-conns').tagged('blue')).toEqual([both.id, blue.id])
    expect(await roomOf('t-conns').tagged('green')).toEqual([])

    await leave(red.client)
    await eventually(
      () => roomOf('t-conns').tagged('red'),
      (ids) => ids.length === 1,
    )
    expect(await command(blue.client, { op: 'tagged', tag: 'red' })).toEqual({ ids: [both.id] })
    await leave(both.client, blue.client)
  })
})

describe('ws.room(env, name) over RPC', () => {
  it('returns the stub of the named room, or of "default" without a name', () => {
    expect(roomOf('lobby').id.equals(env.FANOUT.idFromName('lobby'))).toBe(true)
    expect(fanout.room(env).id.equals(env.FANOUT.idFromName(DEFAULT_ROOM))).toBe(true)
  })

  it('throws ERR_DWS_INVALID_ROOM for a name that is not a room name', () => {
    for (const name of ['bad/name', '', 'a..b', 'x'.repeat(65)]) {
      expect(() => fanout.room(env, name)).toThrow(expect.objectContaining({ code: 'ERR_DWS_INVALID_ROOM' }))
    }
  })

  it('broadcast, count and ids reach the room from outside, typed', async () => {
    const room = roomOf('rpc-broadcast')
    const [a, b] = [await join('rpc-broadcast'), await join('rpc-broadcast')]
    const everyone = await room.broadcast({ notice: 'hello' })
    const butA = await room.broadcast({ notice: 'not a' }, { except: a.id })
    const count = await room.count()
    const ids = await room.ids()
    expectTypeOf(everyone).toEqualTypeOf<number>()
    expectTypeOf(count).toEqualTypeOf<number>()
    // RPC adds Disposable to the array it returns.
    expectTypeOf(ids).toExtend<number[]>()
    expect([everyone, butA, count, ids]).toEqual([2, 1, 2, [a.id, b.id]])
    expect((await next(a.client)).value).toEqual({ notice: 'hello' })
    expect((await next(b.client)).value).toEqual({ notice: 'hello' })
    expect((await next(b.client)).value).toEqual({ notice: 'not a' })
    await expectNothingMore(a.client, b.client)
    await leave(a.client, b.client)
  })

  it('send(id, message) reaches that one connection, and answers false for an id that is not open', async () => {
    const room = roomOf('rpc-send')
    const [a, b] = [await join('rpc-send'), await join('rpc-send')]
    const sent = await room.send(b.id, { direct: true })
    expectTypeOf(sent).toEqualTypeOf<boolean>()
    expect(sent).toBe(true)
    expect((await next(b.client)).value).toEqual({ direct: true })
    expect(await room.send(99, { direct: true })).toBe(false)
    await expectNothingMore(a.client, b.client)
    await leave(a.client, b.client)
  })

  it('close(id, code?, reason?) closes that one connection, runs close once, and answers false for an id that is not open', async () => {
    const room = roomOf('rpc-close')
    const [a, b, c] = [await join('rpc-close'), await join('rpc-close'), await join('rpc-close')]
    expect(await room.close(a.id)).toBe(true)
    expect(await a.client.whenClosed()).toMatchObject({ code: 1000, reason: '' })
    expect(await room.close(b.id, 4000, 'moderated')).toBe(true)
    expect(await b.client.whenClosed()).toMatchObject({ code: 4000, reason: 'moderated' })
    expect(await room.close(a.id)).toBe(false)
    expect(await room.close(99)).toBe(false)
    // A plain then() on the RPC promise: matchers that probe its properties would pipeline calls on it.
    const refused = await room.close(c.id, 1006).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(refused).toMatchObject({ code: 'ERR_DWS_INVALID_CLOSE' })
    expect(c.client.isOpen).toBe(true)

    await closesDelivered(room)
    expect(await room.log()).toEqual([
      { event: 'close', id: a.id, code: 1000, reason: '' },
      { event: 'close', id: b.id, code: 4000, reason: 'moderated' },
    ])
    expect(await room.ids()).toEqual([c.id])
    await leave(c.client)
  })

  it('reaches a room from a Worker route too', async () => {
    const [a, b] = [await join('rpc-worker'), await join('rpc-worker')]
    const response = await request('/notify/rpc-worker', { method: 'POST', body: 'maintenance at noon' })
    expect(await response.json()).toEqual({ sent: 2, count: 2, ids: [a.id, b.id] })
    expect((await next(a.client)).value).toEqual({ notice: 'maintenance at noon' })
    expect((await next(b.client)).value).toEqual({ notice: 'maintenance at noon' })

    const refused = await request('/notify/a..b', { method: 'POST', body: 'x' })
    expect(refused.status).toBe(400)
    expect(await refused.text()).toBe('ERR_DWS_INVALID_ROOM\n')
    await leave(a.client, b.client)
  })
})

describe('after a forced hibernation of the object', () => {
  it('tags, data, ids and connections(tag) are intact, and broadcast, to(tag) and RPC work', async () => {
    const room = roomOf('h-fanout')
    const red = await join('h-fanout', '?tag=red', { 'x-role': 'mod' })
    const blue = await join('h-fanout', '?tag=blue')
    expect(await command(red.client, { op: 'broadcast', text: 'before', except: red.id })).toEqual({
      sent: 1,
    })
    expect((await next(blue.client)).value).toEqual({ from: red.id, text: 'before' })

    await evictDurableObject(room, { webSockets: 'hibernate' })

    expect(await command(red.client, { op: 'whoami' })).toEqual({
      id: red.id,
      room: 'h-fanout',
      tags: ['red', 'role:mod'],
      data: { broadcasts: 1 },
    })
    expect(await room.ids()).toEqual([red.id, blue.id])
    expect(await room.tagged('role:mod')).toEqual([red.id])
    expect(await command(red.client, { op: 'tagged', tag: 'blue' })).toEqual({ ids: [blue.id] })

    expect(await command(red.client, { op: 'to', tag: 'blue', text: 'blues' })).toEqual({ sent: 1 })
    expect((await next(blue.client)).value).toEqual({ from: red.id, text: 'blues' })
    expect(await room.broadcast({ notice: 'after the nap' })).toBe(2)
    expect((await next(red.client)).value).toEqual({ notice: 'after the nap' })
    expect((await next(blue.client)).value).toEqual({ notice: 'after the nap' })

    const third = await join('h-fanout', '?tag=red')
    expect(third.id).toBe(blue.id + 1)
    expect(await room.tagged('red')).toEqual([red.id, third.id])
    await leave(red.client, blue.client, third.client)
  })
})
