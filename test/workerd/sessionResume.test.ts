import { env } from 'cloudflare:workers'
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import {
  BRIEF_WINDOW_MS,
  SESSION_MAX_MESSAGES,
  SESSION_WINDOW_MS,
  briefSessions,
  type BriefSessionsObject,
  type SessionsObject,
} from './fixture/endpoints/sessions.js'
import type { Entry } from './fixture/record.js'
import { eventually, sleep } from './client.js'
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../src/options.js'
import { SESSION_PROTOCOL, SessionClient, evictWithSockets } from './sessionClient.js'
import { opened, sessionsRoom } from './sessionFixture.js'

async function eventsOf(
  room: DurableObjectStub<SessionsObject | BriefSessionsObject>,
  event: string,
  id: number,
): Promise<Entry[]> {
  return (await room.log()).filter((entry) => entry.event === event && entry.id === id)
}

describe('a session resumed after a forced eviction', () => {
  it('keeps its id, data and tags, runs open again with resumed true, and names the session protocol', async () => {
    const room = sessionsRoom('evicted')
    const first = await SessionClient.open('/sessions/evicted?tag=blue&tag=green')
    expect(first.protocol).toBe(SESSION_PROTOCOL)
    // ackEvery and ackBytes: a quarter of the default send window (500 frames, 1 MiB); maxMessageBytes: the default.
    expect(first.welcome).toMatchObject({
      v: 1,
      resumed: false,
      handled: 0,
      window: SESSION_WINDOW_MS,
      ackEvery: 125,
      ackBytes: 262_144,
      maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
    })
    expect(await first.nextPayload()).toBe(`open:${String(first.id)}:false`)
    first.send('set:color=teal')
    first.send('echo:stored')
    expect(await first.nextPayload()).toBe('echo:stored')
    await evictWithSockets(room, first)

    const second = await first.resume('/sessions/evicted')
    expect(second.welcome).toMatchObject({
      id: first.id,
      resumed: true,
      handled: 2,
      last: first.position.last,
    })
    expect(second.welcome.token).not.toBe(first.position.token)
    expect(await second.nextPayload()).toBe(`open:${String(first.id)}:true`)
    expect(await eventsOf(room, 'open', first.id)).toEqual([
      { event: 'open', id: first.id, resumed: false, data: '{}', tags: '["blue","green"]' },
      { event: 'open', id: first.id, resumed: true, data: '{"color":"teal"}', tags: '["blue","green"]' },
    ])
    expect(await room.tagged('blue')).toEqual([first.id])
    expect(await eventsOf(room, 'close', first.id)).toEqual([])
    second.close(1000)
    await second.whenClosed()
  })
})

describe('a session resumed after its socket dropped while the object stayed in memory', () => {
  it('is out of connections() while suspended, and comes back with the same id and data', async () => {
    const room = sessionsRoom('dropped')
    const first = await opened('/sessions/dropped')
    first.send('set:n=1')
    first.send('echo:x')
    expect(await first.nextPayload()).toBe('echo:x')
    await first.drop(room)
    expect(await room.connectionIds()).toEqual([])
    const second = await first.resume('/sessions/dropped')
    expect(second.welcome).toMatchObject({ id: first.id, resumed: true, handled: 2 })
    expect(await second.nextPayload()).toBe(`open:${String(first.id)}:true`)
    expect(await room.connectionIds()).toEqual([first.id])
    expect((await eventsOf(room, 'open', first.id)).at(-1)).toMatchObject({ data: '{"n":"1"}' })
    expect(await eventsOf(room, 'close', first.id)).toEqual([])
    second.close(1000)
    await second.whenClosed()
  })
})

describe('a resume after the window ended', () => {
  const brief = (name: string): DurableObjectStub<BriefSessionsObject> =>
    briefSessions.room<BriefSessionsObject>(env, name)

  it('gets a fresh session, and the old session closed once with 3902 when the alarm ran', async () => {
    const room = brief('expired-by-alarm')
    const first = await SessionClient.open('/brief-sessions/expired-by-alarm')
    first.send('set:kept=no')
    first.send('echo:x')
    expect(await first.payloads(2)).toEqual([`open:${String(first.id)}:false`, 'echo:x'])
    await first.drop(room)
    await sleep(BRIEF_WINDOW_MS + 50)
    await runDurableObjectAlarm(room)
    const closes = await eventually(
      () => eventsOf(room, 'close', first.id),
      (found) => found.length > 0,
    )
    expect(closes).toEqual([
      {
        event: 'close',
        id: first.id,
        code: 3902,
        reason: 'Session expired',
        data: '{"kept":"no"}',
        tags: '[]',
      },
    ])

    const second = await first.resume('/brief-sessions/expired-by-alarm')
    expect(second.welcome).toMatchObject({ resumed: false, handled: 0 })
    expect(second.id).not.toBe(first.id)
    expect(await second.nextPayload()).toBe(`open:${String(second.id)}:false`)
    // Never acknowledged, so the client cannot know they were handled: a reset hands them back.
    expect(second.reset).toEqual(['set:kept=no', 'echo:x'])
    await runDurableObjectAlarm(room)
    expect(await eventsOf(room, 'close', first.id)).toHaveLength(1)
    second.close(1000)
    await second.whenClosed()
  })

  it('gets a fresh session when it comes before the alarm, and the old session still closes once with 3902', async () => {
    const room = brief('expired-before-alarm')
    const first = await opened('/brief-sessions/expired-before-alarm')
    first.send('hold:never')
    await first.drop(room)
    // The client's message is still unacknowledged: a reset hands it back.
    await runInDurableObject(room, (_instance, state) => state.storage.deleteAlarm())
    await sleep(BRIEF_WINDOW_MS + 50)
    const second = await first.resume('/brief-sessions/expired-before-alarm')
    expect(second.resumed).toBe(false)
    expect(second.id).not.toBe(first.id)
    expect(second.reset).toEqual(['hold:never'])
    // close waits behind the handler the old session still runs.
    await sleep(50)
    expect(await eventsOf(room, 'close', first.id)).toEqual([])
    await room.release('never')
    const closes = await eventually(
      () => eventsOf(room, 'close', first.id),
      (found) => found.length > 0,
    )
    expect(closes).toMatchObject([{ code: 3902, reason: 'Session expired' }])
    await runDurableObjectAlarm(room)
    await sleep(50)
    expect(await eventsOf(room, 'close', first.id)).toHaveLength(1)
    second.close(1000)
    await second.whenClosed()
  })
})

describe('a log the window emptied', () => {
  it('goes on numbering after its newest message, even after the object was rebuilt', async () => {
    const room = briefSessions.room<BriefSessionsObject>(env, 'emptied')
    const first = await opened('/brief-sessions/emptied')
    first.send('all:a')
    first.send('all:b')
    expect(await first.payloads(2)).toEqual(['all:a', 'all:b'])
    const newest = first.position.last
    await first.drop(room)
    await sleep(BRIEF_WINDOW_MS + 50)
    // The session ends and the log is trimmed of everything older than the window.
    // (The runtime may have run the alarm already; then this one finds none to run.)
    await runDurableObjectAlarm(room)
    await eventually(
      () => eventsOf(room, 'close', first.id),
      (found) => found.length === 1,
    )
    await evictDurableObject(room)

    const second = await opened('/brief-sessions/emptied')
    // A number handed out twice would look like a duplicate to a client that holds it.
    expect(second.welcome.last).toBe(newest)
    second.send('all:c')
    expect(await second.nextPayload()).toBe('all:c')
    // open's greeting took newest + 1.
    expect(second.position.last).toBe(newest + 2)
    second.close(1000)
    await second.whenClosed()
  })
})

describe('a resume whose position the log no longer reaches', () => {
  it('gets a fresh session (a reset), and the old session closes once with 3902', async () => {
    const room = sessionsRoom('trimmed')
    const first = await opened('/sessions/trimmed')
    await first.drop(room)
    for (let i = 0; i < 3 * SESSION_MAX_MESSAGES; i++) await room.broadcast(`flood ${String(i)}`)
    const second = await first.resume('/sessions/trimmed')
    expect(second.resumed).toBe(false)
    expect(second.id).not.toBe(first.id)
    // The new session starts at the head of the log, not behind it.
    expect(second.welcome.last).toBeGreaterThan(first.position.last + SESSION_MAX_MESSAGES)
    expect(await second.nextPayload()).toBe(`open:${String(second.id)}:false`)
    expect(await eventsOf(room, 'close', first.id)).toMatchObject([{ code: 3902 }])
    second.close(1000)
    await second.whenClosed()
  })
})

describe('a message the client sends again after a resume', () => {
  it('is handed to the message handler once, in order, whether or not the first copy arrived', async () => {
    const room = sessionsRoom('resent')
    const first = await opened('/sessions/resent')
    first.send('echo:1')
    first.send('echo:2')
    expect(await first.payloads(2)).toEqual(['echo:1', 'echo:2'])
    // Neither is acknowledged yet: both go out again after the resume, with their numbers.
    expect(first.unacked).toEqual([1, 2])
    await evictWithSockets(room, first)
    const second = await first.resume('/sessions/resent')
    expect(second.welcome.handled).toBe(2)
    second.sendRaw('1 echo:1')
    second.sendRaw('2 echo:2')
    second.send('echo:3')
    expect(await second.payloads(2)).toEqual([`open:${String(first.id)}:true`, 'echo:3'])
    await second.sync()
    const messages = (await eventsOf(room, 'message', first.id)).map((entry) => entry.message)
    expect(messages).toEqual(['echo:1', 'echo:2', 'echo:3'])
    second.close(1000)
    await second.whenClosed()
  })

  it('is handled on the new socket when the first copy never was', async () => {
    const room = sessionsRoom('resent-unhandled')
    const first = await opened('/sessions/resent-unhandled')
    first.send('hold:gate')
    first.send('echo:behind the gate')
    await first.drop(room)
    // The held handler is still running; the next message waits behind it, and is sent again.
    const second = await first.resume('/sessions/resent-unhandled')
    expect(second.resumed).toBe(true)
    await room.release('gate')
    // The new socket's open queues behind the handler the old socket still runs, so order holds.
    expect(await second.payloads(3)).toEqual([
      'held:gate',
      `open:${String(first.id)}:true`,
      'echo:behind the gate',
    ])
    await second.sync()
    const messages = (await eventsOf(room, 'message', first.id)).map((entry) => entry.message)
    expect(messages).toEqual(['hold:gate', 'echo:behind the gate'])
    second.close(1000)
    await second.whenClosed()
  })
})

describe('tokens', () => {
  it('are refused in another room: the offer there gets a fresh session', async () => {
    const home = await opened('/sessions/token-home')
    const away = await SessionClient.open('/sessions/token-away', { resume: home.position })
    expect(away.resumed).toBe(false)
    expect(await away.nextPayload()).toBe(`open:${String(away.id)}:false`)
    expect(await eventsOf(sessionsRoom('token-home'), 'close', home.id)).toEqual([])
    for (const client of [home, away]) client.close(1000)
    await Promise.all([home.whenClosed(), away.whenClosed()])
  })

  it('are refused once a resume with a newer token was confirmed, and the session is untouched', async () => {
    const room = sessionsRoom('old-token')
    const first = await opened('/sessions/old-token')
    const oldPosition = first.position
    await first.drop(room)
    const second = await first.resume('/sessions/old-token')
    expect(second.resumed).toBe(true)
    second.send('echo:confirms')
    expect(await second.payloads(2)).toEqual([`open:${String(first.id)}:true`, 'echo:confirms'])
    await second.drop(room)
    const thief = await SessionClient.open('/sessions/old-token', { resume: oldPosition })
    expect(thief.resumed).toBe(false)
    expect(thief.id).not.toBe(first.id)
    const third = await second.resume('/sessions/old-token')
    expect(third).toMatchObject({ id: first.id, resumed: true })
    expect(await eventsOf(room, 'close', first.id)).toEqual([])
    for (const client of [thief, third]) client.close(1000)
    await Promise.all([thief.whenClosed(), third.whenClosed()])
  })

  it('stay refused after the object restarts: the retirement is written, many confirms in one statement', async () => {
    const room = sessionsRoom('old-token-kept')
    const clients = await Promise.all([1, 2, 3].map(() => opened('/sessions/old-token-kept')))
    const oldPositions = clients.map((client) => client.position)
    for (const client of clients) await client.drop(room)
    const resumed = await Promise.all(clients.map((client) => client.resume('/sessions/old-token-kept')))
    for (const client of resumed) {
      expect(client.resumed).toBe(true)
      client.send('echo:confirms')
      expect(await client.payloads(2)).toEqual([`open:${String(client.id)}:true`, 'echo:confirms'])
    }
    // The retirements are written on a timer of their own, together; then the object goes.
    await sleep(50)
    await evictWithSockets(room, ...resumed)
    for (const [i, position] of oldPositions.entries()) {
      const thief = await SessionClient.open('/sessions/old-token-kept', { resume: position })
      expect(thief.resumed).toBe(false)
      expect(thief.id).not.toBe(clients[i]?.id)
      thief.close(1000)
      await thief.whenClosed()
    }
    // The current tokens still resume.
    for (const client of resumed) {
      const again = await client.resume('/sessions/old-token-kept')
      expect(again).toMatchObject({ id: client.id, resumed: true })
      again.close(1000)
      await again.whenClosed()
    }
  })

  it('still resume with the old token after a cut right after a resume, before the new token was used', async () => {
    const room = sessionsRoom('cut-after-resume')
    const first = await opened('/sessions/cut-after-resume')
    await first.drop(room)
    const second = await first.resume('/sessions/cut-after-resume')
    expect(second.resumed).toBe(true)
    await second.drop(room)
    // The client never saw the second welcome: it comes back with what it had before.
    const third = await first.resume('/sessions/cut-after-resume')
    expect(third).toMatchObject({ id: first.id, resumed: true })
    // What the second socket's open sent, replayed since the client never got it, then its own.
    expect(await third.payloads(2)).toEqual([
      `open:${String(first.id)}:true`,
      `open:${String(first.id)}:true`,
    ])
    // The token of the welcome it missed was never confirmed, and now is retired.
    third.send('echo:confirms')
    expect(await third.nextPayload()).toBe('echo:confirms')
    await third.drop(room)
    const stale = await SessionClient.open('/sessions/cut-after-resume', { resume: second.position })
    expect(stale.resumed).toBe(false)
    for (const client of [stale]) client.close(1000)
    await stale.whenClosed()
  })
})

describe('a resume while the old socket still looks open', () => {
  it('takes the session over: the old socket gets 3901, the session goes on, and close does not run', async () => {
    const room = sessionsRoom('takeover')
    const first = await opened('/sessions/takeover')
    first.send('set:owner=first')
    const second = await first.resume('/sessions/takeover')
    expect(await first.whenClosed()).toMatchObject({ code: 3901, reason: 'Session taken over' })
    expect(second).toMatchObject({ id: first.id, resumed: true })
    expect(await second.nextPayload()).toBe(`open:${String(first.id)}:true`)
    second.send('echo:still here')
    expect(await second.nextPayload()).toBe('echo:still here')
    expect(await room.connectionIds()).toEqual([first.id])
    expect(await eventsOf(room, 'close', first.id)).toEqual([])
    second.close(1000)
    await second.whenClosed()
  })
})

describe('a resume that offers a position from before its session began', () => {
  it('is resumed from where the session began: nothing sent before it joined is replayed', async () => {
    const room = sessionsRoom('forged-position')
    const earlier = await opened('/sessions/forged-position')
    for (const n of [1, 2, 3]) earlier.send(`all:before-${String(n)}`)
    await earlier.sync()
    const joined = await opened('/sessions/forged-position')
    expect(joined.welcome.last).toBeGreaterThan(3)
    await joined.drop(room)
    // The token is the session's own; the position is one it never held.
    const forged = await SessionClient.open('/sessions/forged-position', {
      resume: { last: 0, token: joined.position.token },
    })
    expect(forged.welcome).toMatchObject({ id: joined.id, resumed: true, last: joined.welcome.last })
    // From the session's start: its own first greeting again, then the resume's; no "all:before-…".
    expect(await forged.payloads(2)).toEqual([
      `open:${String(joined.id)}:false`,
      `open:${String(joined.id)}:true`,
    ])
    forged.close(1000)
    earlier.close(1000)
    await Promise.all([forged.whenClosed(), earlier.whenClosed()])
  })
})

describe('a room whose session table was made before sessions had a floor', () => {
  it('gets the column on first use, and its sessions open and resume as usual', async () => {
    const room = sessionsRoom('old-schema')
    await runInDurableObject(room, (_instance, state) => {
      state.storage.sql.exec(`CREATE TABLE dws_sessions (
        id INTEGER PRIMARY KEY, token TEXT NOT NULL, previous TEXT, data TEXT NOT NULL,
        tags TEXT NOT NULL, handled INTEGER NOT NULL DEFAULT 0, suspended_at INTEGER
      )`)
    })
    const first = await opened('/sessions/old-schema')
    await first.drop(room)
    const back = await first.resume('/sessions/old-schema')
    expect(back.welcome).toMatchObject({ id: first.id, resumed: true })
    back.close(1000)
    await back.whenClosed()
  })
})
