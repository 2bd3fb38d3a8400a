import { describe, expect, it } from 'vitest'
import { closesOf } from './closesOf.js'
import { expectEnded, opened, sessionsRoom } from './sessionFixture.js'

/**
 * A session client that breaks docs/protocol.md is closed with 1002, and its
 * session ends there: close runs once with 1002, and its token resumes
 * nothing. What it sent correctly before is handled.
 */
const bytes = (text: string): ArrayBuffer => new TextEncoder().encode(text).slice().buffer

describe('a session frame that breaks the protocol', () => {
  it.each<[string, string | ArrayBuffer]>([
    ['a data frame with a gap in the numbers', '3 echo:skipped two'],
    ['a data frame whose number was never due', '0 echo:zero'],
    ['a text frame without a number', 'echo:unnumbered'],
    ['a text frame with a number and no space', '2'],
    ['a binary frame without a number', bytes('echo:bytes')],
    ['an unknown control frame', '{"t":"hello"}'],
    ['a control frame that is not JSON', '{"t":"ack",'],
    ['an ack whose last is not a number', '{"t":"ack","last":"12"}'],
  ])('(%s) closes the socket with 1002 and ends the session', async (what, frame) => {
    const name = `protocol-${what.replaceAll(' ', '-')}`
    const room = sessionsRoom(name)
    const session = await opened(`/sessions/${name}`)
    session.send('echo:fine')
    expect(await session.nextPayload()).toBe('echo:fine')
    session.sendRaw(frame)
    expect(await session.whenClosed()).toMatchObject({ code: 1002, reason: 'Protocol error' })
    expect(await closesOf(room, session.id)).toMatchObject([
      { event: 'close', id: session.id, code: 1002, reason: 'Protocol error' },
    ])
    const messages = (await room.log()).filter(
      (entry) => entry.event === 'message' && entry.id === session.id,
    )
    expect(messages.map((entry) => entry.message)).toEqual(['echo:fine'])
    await expectEnded(session, `/sessions/${name}`)
  })

  it('is not a resend: a number the server already handled is dropped quietly and the socket stays open', async () => {
    const room = sessionsRoom('protocol-resend')
    const session = await opened('/sessions/protocol-resend')
    session.send('echo:once')
    expect(await session.nextPayload()).toBe('echo:once')
    session.sendRaw('1 echo:once')
    session.sendRaw(bytes('1 echo:once'))
    session.send('echo:next')
    expect(await session.nextPayload()).toBe('echo:next')
    const messages = (await room.log()).filter(
      (entry) => entry.event === 'message' && entry.id === session.id,
    )
    expect(messages.map((entry) => entry.message)).toEqual(['echo:once', 'echo:next'])
    session.close(1000)
    await session.whenClosed()
  })
})
