import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { HandledStamps } from '../../src/object/session/handledStamps.js'
import { SessionLog } from '../../src/object/session/log.js'
import { opened, sessionsRoom } from './sessionFixture.js'

describe('the session log bounded in bytes (resume.maxBytes)', () => {
  it('drops its oldest rows once its frames pass the bound, keeps the newest, and numbers on', async () => {
    await runInDurableObject(sessionsRoom('bytes'), (_instance, state) => {
      const log = new SessionLog(
        state.storage.sql,
        { window: 60_000, maxMessages: 5_000, maxBytes: 1_000 },
        new HandledStamps(state.storage.sql),
      )
      const frame = 'x'.repeat(100)
      for (let i = 1; i <= 30; i++) expect(log.append(null, null, null, frame, Date.now())).toBe(i)
      // Trimming waits for a sixteenth over the bound, then goes back to it.
      expect(log.bytes()).toBeLessThanOrEqual(1_000 + (1_000 >> 4))
      expect(log.bytes()).toBeGreaterThanOrEqual(1_000 - 100)
      expect(log.head()).toBe(30)
      expect(log.oldestKept).toBeGreaterThan(1)
      expect(log.trimmedThrough()).toBe(log.oldestKept - 1)
      // The byte count survives a new instance, which reads it back from the table.
      const again = new SessionLog(
        state.storage.sql,
        { window: 60_000, maxMessages: 5_000, maxBytes: 1_000 },
        new HandledStamps(state.storage.sql),
      )
      expect(again.bytes()).toBe(log.bytes())
      expect(again.head()).toBe(30)
    })
  })

  it('keeps one frame larger than the whole bound: the newest row is never dropped', async () => {
    await runInDurableObject(sessionsRoom('one-big'), (_instance, state) => {
      const log = new SessionLog(
        state.storage.sql,
        { window: 60_000, maxMessages: 5_000, maxBytes: 100 },
        new HandledStamps(state.storage.sql),
      )
      log.append(null, null, null, 'y'.repeat(50), Date.now())
      expect(log.append(null, null, null, 'z'.repeat(500), Date.now())).toBe(2)
      expect(log.pending(1, [], 0, 10).pending).toEqual([{ seq: 2, size: 500 }])
    })
  })
})

describe('manager.storage.deleteAll()', () => {
  it('leaves the package working: numbering and ids go on, a live session keeps receiving in order, and old tokens start anew', async () => {
    const room = sessionsRoom('wiped')
    const first = await opened('/sessions/wiped')
    first.send('all:before')
    expect(await first.nextPayload()).toBe('all:before')
    const before = first.position.last
    await room.wipe()

    first.send('all:after')
    const after = await first.next()
    expect(after.payload).toBe('all:after')
    expect(after.seq).toBeGreaterThan(before)

    const second = await opened('/sessions/wiped')
    expect(second.id).toBe(first.id + 1)
    expect(second.welcome.last).toBeGreaterThanOrEqual(after.seq)
    second.close(1000)

    // The sessions went with the storage: a resume of the first starts a new session.
    await first.drop(room)
    const third = await first.resume('/sessions/wiped')
    expect(third.resumed).toBe(false)
    expect(third.id).toBe(second.id + 1)
    third.close(1000)
  })
})
