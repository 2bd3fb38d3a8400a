import { describe, expect, it } from 'vitest'
import { ReplyError } from '../../src/index.js'
import { readFailure } from '../../src/shared/dataFrames.js'
import { eventually } from './client.js'
import { PAGED_MAX_REQUESTS } from './fixture/endpoints/sessions.js'
import type { SessionsObject } from './fixture/endpoints/sessions.js'
import { SessionClient, type DataFrame } from './sessionClient.js'
import { opened, sessionsRoom } from './sessionFixture.js'

async function requestsOf(room: DurableObjectStub<SessionsObject>, message: string): Promise<number> {
  return (await room.log()).filter((entry) => entry.event === 'request' && entry.message === message).length
}

function failureOf(frame: DataFrame): ReturnType<typeof readFailure> {
  expect(frame.mark?.type).toBe('failure')
  return readFailure(frame.payload)
}

describe('request/reply over a session', () => {
  it("answers with what the request handler returned, in a reply frame that names the request's number", async () => {
    const session = await opened('/sessions/replies')
    const c = session.request('double:ab')
    const reply = await session.next()
    expect(reply).toMatchObject({ payload: 'abab', mark: { type: 'reply', to: c } })
    session.close(1000)
  })

  it('sends a ReplyError with its code and message, anything else as failed without its text, and keeps the connection open', async () => {
    const session = await opened('/sessions/failures')
    const denied = session.request('deny:cake')
    const deniedFrame = await session.next()
    expect(deniedFrame.mark).toEqual({ type: 'failure', to: denied })
    expect(failureOf(deniedFrame)).toEqual({ code: 'not-allowed', message: 'no cake' })
    const crashed = session.request('crash')
    const crashedFrame = await session.next()
    expect(crashedFrame.mark).toEqual({ type: 'failure', to: crashed })
    expect(failureOf(crashedFrame)).toEqual({ code: 'failed', message: 'The request failed on the server.' })
    expect(crashedFrame.payload).not.toContain('SECRET')
    session.send('echo:still open')
    expect(await session.nextPayload()).toBe('echo:still open')
    session.close(1000)
  })

  it('refuses a request on an endpoint without a request handler, running nothing', async () => {
    const session = await SessionClient.open('/strict-sessions/no-requests')
    expect(await session.nextPayload()).toMatch(/^open:/)
    const c = session.request('double:x')
    const frame = await session.next()
    expect(frame.mark).toEqual({ type: 'failure', to: c })
    expect(failureOf(frame)).toEqual({ code: 'refused', message: 'This endpoint takes no requests.' })
    session.close(1000)
  })

  it('runs a request cut off between its start and its reply once, and answers it once on the resumed socket', async () => {
    const room = sessionsRoom('cut-running')
    const first = await opened('/sessions/cut-running')
    const c = first.request('hold:r')
    await eventually(
      () => requestsOf(room, 'hold:r'),
      (count) => count === 1,
    )
    await first.drop(room)
    const second = await first.resume('/sessions/cut-running')
    // Not handled yet: the client sends it again, and the server, which has it running, drops the copy.
    expect(second.welcome).toMatchObject({ resumed: true, handled: 0 })
    await room.release('r')
    const reply = await second.next()
    expect(reply).toMatchObject({ payload: 'held:r', mark: { type: 'reply', to: c } })
    expect(await second.nextPayload()).toMatch(/^open:/)
    await second.expectNothingWithin(50)
    expect(await requestsOf(room, 'hold:r')).toBe(1)
    second.close(1000)
  })

  it('brings a reply cut off between the server and the client once on the resume, without running the request again', async () => {
    const room = sessionsRoom('cut-reply')
    const first = await opened('/sessions/cut-reply')
    const c = first.request('double:z')
    await eventually(
      () => requestsOf(room, 'double:z'),
      (count) => count === 1,
    )
    // The reply is on its way but never read: the resume offers a position before it.
    await first.drop(room)
    const second = await first.resume('/sessions/cut-reply')
    expect(second.welcome).toMatchObject({ resumed: true, handled: 1 })
    const reply = await second.next()
    expect(reply).toMatchObject({ payload: 'zz', mark: { type: 'reply', to: c } })
    expect(await second.nextPayload()).toMatch(/^open:/)
    await second.expectNothingWithin(50)
    expect(await requestsOf(room, 'double:z')).toBe(1)
    second.close(1000)
  })

  it(`closes a session with more than maxRequests (${String(PAGED_MAX_REQUESTS)}) requests waiting for replies with 3906, which ends it`, async () => {
    const session = await SessionClient.open('/paged-sessions/too-many')
    expect(session.welcome.maxRequests).toBe(PAGED_MAX_REQUESTS)
    expect(await session.nextPayload()).toMatch(/^open:/)
    for (let i = 0; i <= PAGED_MAX_REQUESTS; i++) session.request('hold:never')
    const closed = await session.whenClosed()
    expect(closed.code).toBe(3906)
    const again = await session.resume('/paged-sessions/too-many')
    expect(again.resumed).toBe(false)
    again.close(1000)
  })
})

describe('request/reply without durable sessions (resume: false)', () => {
  it('answers a request, and a reply the drop took is not brought again: at most once', async () => {
    const first = await SessionClient.open('/unlogged-sessions/at-most-once')
    expect(first.welcome.window).toBe(0)
    expect(await first.nextPayload()).toMatch(/^open:/)
    const c = first.request('double:q')
    expect(await first.next()).toMatchObject({ payload: 'qq', mark: { type: 'reply', to: c } })
    // A reply on its way when the socket goes is gone with it: there is no log to replay it from.
    first.request('double:lost')
    first.close(4000)
    await first.whenClosed()
    const second = await first.resume('/unlogged-sessions/at-most-once')
    expect(second.resumed).toBe(false)
    expect(await second.nextPayload()).toMatch(/^open:/)
    await second.expectNothingWithin(50)
    second.close(1000)
  })
})

describe('new ReplyError(code, message)', () => {
  it.each(['failed', 'timeout', 'closed', 'refused', '', 'Has-Capitals', '1st', 'x'.repeat(65)])(
    'refuses the code %j with ERR_DWS_INVALID_OPTIONS',
    (code) => {
      expect(() => new ReplyError(code)).toThrow(expect.objectContaining({ code: 'ERR_DWS_INVALID_OPTIONS' }))
    },
  )

  it('keeps a code of the app and its message', () => {
    const error = new ReplyError('not-allowed', 'no cake')
    expect(error).toMatchObject({ name: 'ReplyError', code: 'not-allowed', message: 'no cake' })
  })
})
