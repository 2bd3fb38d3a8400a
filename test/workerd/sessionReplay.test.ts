import { env } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { BRIEF_WINDOW_MS, briefSessions, type BriefSessionsObject } from './fixture/endpoints/sessions.js'
import { sleep } from './client.js'
import { SessionClient, evictWithSockets } from './sessionClient.js'
import { opened, sessionsRoom } from './sessionFixture.js'

/**
 * What a session missed while it had no socket arrives after the welcome,
 * in the order it was sent, each message once, and before anything newer:
 * its own sends, broadcasts and `to(tag)` sends that included it, and none
 * that left it out. The session client fails on any number it has seen.
 */
describe('the replay after a resume', () => {
  it('brings own sends, broadcasts and tagged sends from while the socket was dropped, in order, once, before newer ones', async () => {
    const room = sessionsRoom('replay-drop')
    const away = await opened('/sessions/replay-drop?tag=red')
    const other = await opened('/sessions/replay-drop?tag=blue')
    away.send('hold:gate')
    await away.drop(room)

    // Its own handler sends while the session is suspended.
    await room.release('gate')
    other.send('all:1')
    other.send('others:2')
    other.send('to:red:3')
    other.send('to:blue:not for red')
    other.send('echo:sync')
    expect(await other.payloads(3)).toEqual(['all:1', 'to:blue:not for red', 'echo:sync'])
    expect(await room.broadcast('rpc:everyone but away', { except: [away.id] })).toBe(1)
    expect(await room.toTag('red', 'rpc:red but away', [away.id])).toBe(0)
    expect(await room.toTag('red', 'rpc:red')).toBe(0)
    expect(await room.sentTo(other.id, 'rpc:only other')).toBe(true)
    expect(await other.payloads(2)).toEqual(['rpc:everyone but away', 'rpc:only other'])

    const back = await away.resume('/sessions/replay-drop')
    expect(back.welcome).toMatchObject({ id: away.id, resumed: true })
    const replayed = await back.payloads(5)
    expect(replayed).toEqual(['held:gate', 'all:1', 'others:2', 'to:red:3', 'rpc:red'])
    expect(await back.nextPayload()).toBe(`open:${String(away.id)}:true`)
    other.send('all:newer')
    expect(await back.nextPayload()).toBe('all:newer')
    await back.expectNothingWithin(100)
    for (const client of [back, other]) client.close(1000)
    await Promise.all([back.whenClosed(), other.whenClosed()])
  })

  it('brings what was sent while a restart had cut every socket, to each session what was its own', async () => {
    const room = sessionsRoom('replay-evict')
    const red = await opened('/sessions/replay-evict?tag=red')
    const blue = await opened('/sessions/replay-evict?tag=blue')
    await evictWithSockets(room, red, blue)

    expect(await room.broadcast('rpc:all')).toBe(0)
    expect(await room.broadcast('rpc:all but red', { except: [red.id] })).toBe(0)
    expect(await room.toTag('red', 'rpc:red')).toBe(0)
    expect(await room.toTag('blue', 'rpc:blue')).toBe(0)
    expect(await room.toTag('blue', 'rpc:blue but blue', [blue.id])).toBe(0)

    const redBack = await red.resume('/sessions/replay-evict')
    const blueBack = await blue.resume('/sessions/replay-evict')
    expect([redBack.resumed, blueBack.resumed]).toEqual([true, true])
    expect(await redBack.payloads(3)).toEqual(['rpc:all', 'rpc:red', `open:${String(red.id)}:true`])
    expect(await blueBack.payloads(4)).toEqual([
      'rpc:all',
      'rpc:all but red',
      'rpc:blue',
      `open:${String(blue.id)}:true`,
    ])
    // A session numbers what it receives by the room's log: a broadcast has one number for all.
    await room.broadcast('rpc:live')
    const [redLive, blueLive] = await Promise.all([redBack.next(), blueBack.next()])
    expect(redLive).toEqual(blueLive)
    await Promise.all([redBack.expectNothingWithin(100), blueBack.expectNothingWithin(100)])
    for (const client of [redBack, blueBack]) client.close(1000)
    await Promise.all([redBack.whenClosed(), blueBack.whenClosed()])
  })

  it('brings what RPC send(id) sent to the suspended session, also once the object was rebuilt', async () => {
    const room = sessionsRoom('replay-rpc-send')
    const away = await opened('/sessions/replay-rpc-send')
    await away.drop(room)
    expect(await room.send(away.id, 'rpc:while dropped')).toBe(true)
    await evictDurableObject(room)
    expect(await room.send(away.id, 'rpc:after a rebuild')).toBe(true)
    expect(await room.send(away.id + 1_000, 'rpc:to nobody')).toBe(false)
    const back = await away.resume('/sessions/replay-rpc-send')
    expect(await back.payloads(3)).toEqual([
      'rpc:while dropped',
      'rpc:after a rebuild',
      `open:${String(away.id)}:true`,
    ])
    await back.expectNothingWithin(100)
    back.close(1000)
    await back.whenClosed()
  })

  it('keeps no RPC send(id) for a session whose window passed', async () => {
    const room = briefSessions.room<BriefSessionsObject>(env, 'replay-rpc-late')
    const away = await SessionClient.open('/brief-sessions/replay-rpc-late')
    await away.drop(room)
    await sleep(BRIEF_WINDOW_MS + 50)
    expect(await room.send(away.id, 'rpc:too late')).toBe(false)
  })

  it('brings nothing twice when the client resumes from a position past part of what it missed', async () => {
    const room = sessionsRoom('replay-partial')
    const session = await opened('/sessions/replay-partial')
    await room.broadcast('first')
    expect(await session.nextPayload()).toBe('first')
    await session.drop(room)
    await room.broadcast('second')
    const back = await session.resume('/sessions/replay-partial')
    expect(await back.payloads(2)).toEqual(['second', `open:${String(session.id)}:true`])
    await back.expectNothingWithin(100)
    back.close(1000)
    await back.whenClosed()
  })
})
