import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import {
  PAGED_WINDOW,
  SESSION_MAX_MESSAGES,
  pagedSessions,
  type PagedSessionsObject,
} from './fixture/endpoints/sessions.js'
import { MAX_LOGGED_FRAME_BYTES } from '../../src/object/session/log.js'
import { closesOf } from './closesOf.js'
import { opened, sessionsRoom } from './sessionFixture.js'

/**
 * A resume replays what its session missed the way a held client catches up:
 * from the log, one send window at a time, each further window as the
 * client's acks come, so what the object holds for any number of resumes is
 * bounded by their windows, not by the history.
 */
describe('a resume that missed more than its send window', () => {
  it('gets a window at a time as it acknowledges, every message once and in order, then goes on live', async () => {
    const path = '/paged-sessions/long-history'
    const room = pagedSessions.room<PagedSessionsObject>(env, 'long-history')
    const reader = await opened(path)
    const writer = await opened(path)
    await reader.drop(room)
    const count = 5 * PAGED_WINDOW + 1
    for (let i = 1; i <= count; i++) writer.send(`all:${String(i)}`)
    await writer.sync()

    const back = await reader.resume(path)
    expect(back.welcome).toMatchObject({ id: reader.id, resumed: true })
    // What `open` sent on the resume was held behind the replay, so it comes last.
    const expected = [
      ...Array.from({ length: count }, (_, i) => `all:${String(i + 1)}`),
      `open:${String(reader.id)}:true`,
    ]
    const got: string[] = []
    while (got.length < expected.length) {
      got.push(...(await back.payloads(Math.min(PAGED_WINDOW, expected.length - got.length))))
      // Not a frame more until the client acknowledges.
      if (got.length < expected.length) await back.expectNothingWithin(100)
      back.ack()
    }
    expect(got).toEqual(expected)

    back.send('echo:live')
    expect(await back.nextPayload()).toBe('echo:live')
    back.close(1000)
    writer.close(1000)
    await Promise.all([back.whenClosed(), writer.whenClosed()])
  })

  it('that missed nothing for it is live at once', async () => {
    const path = '/paged-sessions/nothing-missed'
    const room = pagedSessions.room<PagedSessionsObject>(env, 'nothing-missed')
    const reader = await opened(path)
    await reader.drop(room)
    const back = await reader.resume(path)
    expect(await back.nextPayload()).toBe(`open:${String(reader.id)}:true`)
    back.send('echo:live')
    expect(await back.nextPayload()).toBe('echo:live')
    back.close(1000)
    await back.whenClosed()
  })
})

describe('a session that nothing in the log was for', () => {
  it('is told how far the log moved before a trim passes it, so its resume is no reset', async () => {
    const room = sessionsRoom('quiet')
    const quiet = await opened('/sessions/quiet')
    const loud = await opened('/sessions/quiet?tag=red')
    const startedAt = quiet.position.last
    for (let i = 0; i < 3 * SESSION_MAX_MESSAGES; i++) await room.toTag('red', `to:red:${String(i)}`)
    // The acks that carry the position are control frames: nothing for the quiet client's application.
    await quiet.expectNothingWithin(200)
    expect(quiet.position.last).toBeGreaterThan(startedAt + SESSION_MAX_MESSAGES)
    await quiet.drop(room)
    const back = await quiet.resume('/sessions/quiet')
    expect(back.welcome).toMatchObject({ id: quiet.id, resumed: true })
    expect(await back.nextPayload()).toBe(`open:${String(quiet.id)}:true`)
    back.close(1000)
    loud.close(1000)
    await Promise.all([back.whenClosed(), loud.whenClosed()])
  })
})

describe('a message too large for the session log', () => {
  it('fails only the call that sent it, with ERR_DWS_MESSAGE_TOO_LARGE: nothing is sent or logged, and the room goes on', async () => {
    const sender = await opened('/sessions/too-large')
    const other = await opened('/sessions/too-large')
    sender.send(`big:${String(MAX_LOGGED_FRAME_BYTES + 1)}`)
    expect(await sender.nextPayload()).toBe('refused:ERR_DWS_MESSAGE_TOO_LARGE')
    sender.send('big:1000')
    expect((await sender.nextPayload()).length).toBe(1000)
    // The other client gets the broadcast that fitted, and nothing of the one that did not.
    expect((await other.nextPayload()).length).toBe(1000)
    sender.close(1000)
    other.close(1000)
    await Promise.all([sender.whenClosed(), other.whenClosed()])
  })
})

describe('the session log', () => {
  it('is dropped when the last session ends, all but the row that keeps the numbering', async () => {
    const room = sessionsRoom('log-dropped')
    const rows = (): Promise<number> =>
      runInDurableObject(
        room,
        (_instance, state) =>
          state.storage.sql.exec<{ n: number }>('SELECT count(*) AS n FROM dws_log').one().n,
      )
    const first = await opened('/sessions/log-dropped')
    const second = await opened('/sessions/log-dropped')
    for (let i = 0; i < 10; i++) first.send(`all:${String(i)}`)
    await first.sync()
    expect(await rows()).toBeGreaterThan(10)
    first.close(1000)
    await closesOf(room, first.id)
    // One session is left, and it may still need the log.
    expect(await rows()).toBeGreaterThan(10)
    second.close(1000)
    await closesOf(room, second.id)
    expect(await rows()).toBe(1)
    // Numbering goes on after the newest row: a new session starts there.
    const third = await opened('/sessions/log-dropped')
    expect(third.welcome.last).toBeGreaterThan(10)
    third.close(1000)
    await third.whenClosed()
  })
})
