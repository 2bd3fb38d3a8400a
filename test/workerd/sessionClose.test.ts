import { env } from 'cloudflare:workers'
import { evictDurableObject, runDurableObjectAlarm } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import {
  BRIEF_WINDOW_MS,
  SESSION_MAX_MESSAGES,
  briefSessions,
  type BriefSessionsObject,
} from './fixture/endpoints/sessions.js'
import type { Entry } from './fixture/record.js'
import { sleep } from './client.js'
import { closesOf } from './closesOf.js'
import { SessionClient, evictWithSockets } from './sessionClient.js'
import { expectEnded, opened, sessionsRoom } from './sessionFixture.js'

/**
 * `close` runs exactly once per session, on every path that ends one, and on
 * none that only suspends it. closesOf() waits until every close the runtime
 * owes has reached the object and the object was rebuilt, so a close that
 * would run twice (even only on a woken object) is seen.
 */
function withoutData(entries: Entry[]): Entry[] {
  return entries.map(({ event, id, code, reason }) => ({
    event: event ?? null,
    id: id ?? null,
    code: code ?? null,
    reason: reason ?? null,
  }))
}

describe('close for a session', () => {
  it('runs once with 1000 when the client closes cleanly', async () => {
    const room = sessionsRoom('clean')
    const session = await opened('/sessions/clean')
    session.close(1000, 'done')
    await session.whenClosed()
    expect(withoutData(await closesOf(room, session.id))).toEqual([
      { event: 'close', id: session.id, code: 1000, reason: 'done' },
    ])
    // The session is gone: its token no longer resumes anything.
    await expectEnded(session, '/sessions/clean')
  })

  it('runs once with the code the server closed with', async () => {
    const room = sessionsRoom('server-close')
    const session = await opened('/sessions/server-close')
    session.send('close-me')
    expect(await session.whenClosed()).toMatchObject({ code: 4000, reason: 'server says bye' })
    expect(withoutData(await closesOf(room, session.id))).toEqual([
      { event: 'close', id: session.id, code: 4000, reason: 'server says bye' },
    ])
    await expectEnded(session, '/sessions/server-close')
  })

  it('runs once with the code of an RPC close(id) that ends a suspended session, and a resume then starts afresh', async () => {
    const room = sessionsRoom('rpc-close-suspended')
    const session = await opened('/sessions/rpc-close-suspended')
    session.send('set:k=v')
    await session.drop(room)
    expect(await room.close(session.id, 4001, 'removed by an admin')).toBe(true)
    // Ended, not suspended any more: a second close finds nothing.
    expect(await room.close(session.id, 4001, 'again')).toBe(false)
    // A code no server may send is refused before the id is looked up (a catch handler of its own:
    // the RPC promise is settled exactly once, so nothing is left unhandled).
    const refused = await room.close(session.id, 1006).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(refused).toMatchObject({ code: 'ERR_DWS_INVALID_CLOSE' })
    const closes = await closesOf(room, session.id)
    expect(closes).toMatchObject([
      { event: 'close', id: session.id, code: 4001, reason: 'removed by an admin', data: '{"k":"v"}' },
    ])
    await runDurableObjectAlarm(room)
    expect(await closesOf(room, session.id)).toHaveLength(1)
    await expectEnded(session, '/sessions/rpc-close-suspended')
  })

  it('does not run for a drop, and runs once when the resumed session closes cleanly', async () => {
    const room = sessionsRoom('drop-resume-close')
    const first = await opened('/sessions/drop-resume-close')
    await first.drop(room)
    await evictDurableObject(room, { webSockets: 'hibernate' })
    expect((await room.log()).filter((entry) => entry.event === 'close')).toEqual([])
    const second = await first.resume('/sessions/drop-resume-close')
    expect(second.resumed).toBe(true)
    second.close(1000, 'bye')
    await second.whenClosed()
    expect(withoutData(await closesOf(room, first.id))).toEqual([
      { event: 'close', id: first.id, code: 1000, reason: 'bye' },
    ])
  })

  it('does not run for an eviction that cut the socket, and runs once when the resumed session closes', async () => {
    const room = sessionsRoom('evict-resume-close')
    const first = await opened('/sessions/evict-resume-close')
    await evictWithSockets(room, first)
    const second = await first.resume('/sessions/evict-resume-close')
    expect(second.resumed).toBe(true)
    second.close(1000, 'bye')
    await second.whenClosed()
    expect(withoutData(await closesOf(room, first.id))).toEqual([
      { event: 'close', id: first.id, code: 1000, reason: 'bye' },
    ])
  })

  it('does not run for a socket that was taken over, and runs once when the session closes', async () => {
    const room = sessionsRoom('takeover')
    const first = await opened('/sessions/takeover')
    const second = await first.resume('/sessions/takeover')
    expect(await first.whenClosed()).toMatchObject({ code: 3901 })
    second.close(1000, 'bye')
    await second.whenClosed()
    expect(withoutData(await closesOf(room, first.id))).toEqual([
      { event: 'close', id: first.id, code: 1000, reason: 'bye' },
    ])
  })

  it('does not run when a half-open socket that was taken over answers 3901 after the object hibernated', async () => {
    const room = sessionsRoom('takeover-late')
    const first = await opened('/sessions/takeover-late', { halfOpen: true })
    const second = await first.resume('/sessions/takeover-late')
    expect(await second.nextPayload()).toBe(`open:${String(first.id)}:true`)
    await evictDurableObject(room, { webSockets: 'hibernate' })
    // The old client answers the takeover only now, waking the object.
    first.close(3901, 'Session taken over')
    await first.whenClosed()
    second.send('echo:after the late answer')
    expect(await second.nextPayload()).toBe('echo:after the late answer')
    expect(await room.connectionIds()).toEqual([first.id])
    await sleep(50)
    expect((await room.log()).filter((entry) => entry.event === 'close')).toEqual([])
    second.close(1000, 'bye')
    await second.whenClosed()
    expect(withoutData(await closesOf(room, first.id))).toEqual([
      { event: 'close', id: first.id, code: 1000, reason: 'bye' },
    ])
  })

  it('runs once with 3901 when a resume too far behind the log takes over a socket that still looked open', async () => {
    const room = sessionsRoom('takeover-reset')
    const first = await opened('/sessions/takeover-reset')
    const stale = first.position
    for (let i = 0; i < 3 * SESSION_MAX_MESSAGES; i++) await room.broadcast(`flood ${String(i)}`)
    const second = await SessionClient.open('/sessions/takeover-reset', { resume: stale })
    expect(second.resumed).toBe(false)
    expect(await first.whenClosed()).toMatchObject({ code: 3901 })
    expect(withoutData(await closesOf(room, first.id))).toEqual([
      { event: 'close', id: first.id, code: 3901, reason: 'Session taken over' },
    ])
    expect(await room.connectionIds()).toEqual([second.id])
    second.close(1000)
    await second.whenClosed()
  })

  it('runs once with 3902 when the window ends, with the session data and tags', async () => {
    const room = briefSessions.room<BriefSessionsObject>(env, 'window-end')
    const session = await SessionClient.open('/brief-sessions/window-end?tag=red')
    session.send('set:k=v')
    session.send('echo:x')
    expect(await session.payloads(2)).toEqual([`open:${String(session.id)}:false`, 'echo:x'])
    await session.drop(room)
    await sleep(BRIEF_WINDOW_MS + 50)
    await runDurableObjectAlarm(room)
    expect(await closesOf(room, session.id)).toEqual([
      {
        event: 'close',
        id: session.id,
        code: 3902,
        reason: 'Session expired',
        data: '{"k":"v"}',
        tags: '["red"]',
      },
    ])
    await runDurableObjectAlarm(room)
    expect((await room.log()).filter((entry) => entry.event === 'close')).toHaveLength(1)
  })

  it('runs once with 3902 when the window ends after a restart that cut the socket', async () => {
    const room = briefSessions.room<BriefSessionsObject>(env, 'window-end-restart')
    const session = await opened('/brief-sessions/window-end-restart')
    await evictWithSockets(room, session)
    // The next instance finds the session still marked attached, suspends it, and sets the alarm.
    expect(await room.connectionIds()).toEqual([])
    await sleep(BRIEF_WINDOW_MS + 50)
    await runDurableObjectAlarm(room)
    expect(withoutData(await closesOf(room, session.id))).toEqual([
      { event: 'close', id: session.id, code: 3902, reason: 'Session expired' },
    ])
  })
})
