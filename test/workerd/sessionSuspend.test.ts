import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { STRICT_IDLE_MS, strictSessions, type StrictSessionsObject } from './fixture/endpoints/sessions.js'
import type { Entry } from './fixture/record.js'
import { sleep } from './client.js'
import { closesOf } from './closesOf.js'
import type { SessionClient } from './sessionClient.js'
import { expectEnded, opened, sessionsRoom } from './sessionFixture.js'

/**
 * Which closes end a session and which only suspend it (docs/protocol.md §7):
 * a suspended session runs no `close`, and its token resumes it with its id
 * and data; an ended one runs `close` once, and its token resumes nothing.
 */
async function suspendsFor(
  room: DurableObjectStub<StrictSessionsObject> | ReturnType<typeof sessionsRoom>,
  id: number,
): Promise<Entry[]> {
  return (await room.log()).filter((entry) => entry.event === 'suspend' && entry.id === id)
}

async function closesFor(
  room: DurableObjectStub<StrictSessionsObject> | ReturnType<typeof sessionsRoom>,
  id: number,
): Promise<Entry[]> {
  return (await room.log()).filter((entry) => entry.event === 'close' && entry.id === id)
}

/** Resumes `session` at `path` and checks it came back whole: same id, data kept, `open` again with resumed true. */
async function expectResumed(session: SessionClient, path: string): Promise<SessionClient> {
  const again = await session.resume(path)
  expect(again.welcome).toMatchObject({ id: session.id, resumed: true })
  expect(await again.nextPayload()).toBe(`open:${String(session.id)}:true`)
  again.send('echo:still here')
  expect(await again.nextPayload()).toBe('echo:still here')
  return again
}

describe('a close from the client', () => {
  it.each([
    [4000, 'a stalled link (the client heartbeat close)'],
    [3001, 'any application code'],
    [1001, 'a page going away'],
  ])('with %i (%s) suspends the session: close does not run, and the token resumes it', async (code) => {
    const room = sessionsRoom(`client-${String(code)}`)
    const path = `/sessions/client-${String(code)}`
    const session = await opened(path)
    session.send('set:kept=yes')
    session.close(code, 'bye for now')
    await session.whenClosed()
    const again = await expectResumed(session, path)
    expect(await closesFor(room, session.id)).toEqual([])
    expect(await suspendsFor(room, session.id)).toMatchObject([{ code, data: '{"kept":"yes"}' }])
    again.close(1000)
    expect(await closesOf(room, session.id)).toMatchObject([{ code: 1000, data: '{"kept":"yes"}' }])
  })

  it('without a code (1005) ends the session: close runs once with 1005, and the token resumes nothing', async () => {
    const room = sessionsRoom('client-no-code')
    const session = await opened('/sessions/client-no-code')
    session.close()
    await session.whenClosed()
    expect(await closesOf(room, session.id)).toMatchObject([{ code: 1005 }])
    expect(await suspendsFor(room, session.id)).toEqual([])
    await expectEnded(session, '/sessions/client-no-code')
  })
})

describe('a close the server starts', () => {
  it('after a handler failed (1011) suspends the session: close does not run, and a resume keeps the data', async () => {
    const room = sessionsRoom('server-1011')
    const session = await opened('/sessions/server-1011')
    session.send('set:kept=yes')
    session.send('fail')
    expect(await session.whenClosed()).toMatchObject({ code: 1011 })
    const again = await expectResumed(session, '/sessions/server-1011')
    expect(await closesFor(room, session.id)).toEqual([])
    expect(await suspendsFor(room, session.id)).toMatchObject([{ code: 1011 }])
    again.close(1000)
    expect(await closesOf(room, session.id)).toMatchObject([{ code: 1000, data: '{"kept":"yes"}' }])
  })

  it('for idleTimeout (1001) suspends the session, and a resume comes back to it', async () => {
    const room = strictSessions.room<StrictSessionsObject>(env, 'server-idle')
    const session = await opened('/strict-sessions/server-idle')
    await sleep(STRICT_IDLE_MS + 100)
    await runDurableObjectAlarm(room)
    expect(await session.whenClosed()).toMatchObject({ code: 1001, reason: 'Idle timeout' })
    const again = await expectResumed(session, '/strict-sessions/server-idle')
    expect(await closesFor(room, session.id)).toEqual([])
    again.close(1000)
    await again.whenClosed()
  })

  it('for maxQueued (1013) suspends the session; what was queued is still handled, and a resume says so', async () => {
    const room = strictSessions.room<StrictSessionsObject>(env, 'server-queued')
    const session = await opened('/strict-sessions/server-queued')
    session.send('hold:q')
    // One running and two waiting fill maxQueued; the fourth is over it.
    session.send('echo:one')
    session.send('echo:two')
    session.send('echo:three')
    expect(await session.whenClosed()).toMatchObject({ code: 1013 })
    await room.release('q')
    const again = await session.resume('/strict-sessions/server-queued')
    expect(again.welcome).toMatchObject({ id: session.id, resumed: true })
    expect(await closesFor(room, session.id)).toEqual([])
    again.close(1000)
    await again.whenClosed()
  })

  it('with an application code ends the session: close runs once, and the token resumes nothing', async () => {
    const room = sessionsRoom('server-4000')
    const session = await opened('/sessions/server-4000')
    session.send('close-me')
    expect(await session.whenClosed()).toMatchObject({ code: 4000 })
    expect(await closesOf(room, session.id)).toMatchObject([{ code: 4000 }])
    await expectEnded(session, '/sessions/server-4000')
  })
})
