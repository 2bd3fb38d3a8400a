import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { HandledStamps } from '../../src/object/session/handledStamps.js'
import { SessionLog } from '../../src/object/session/log.js'
import { SESSION_MAX_MESSAGES } from './fixture/endpoints/sessions.js'
import { opened, sessionsRoom } from './sessionFixture.js'

/** What SQLite holds of one session's `handled`: its own row's count, and the log rows' stamps. */
interface Stored {
  readonly handled: number
  /** `[handled_for, handled, frame]` of every log row, oldest first. */
  readonly rows: readonly (readonly [number | null, number | null, string])[]
}

function stored(room: string, id: number): Promise<Stored> {
  return runInDurableObject(sessionsRoom(room), (_instance, state) => {
    const sql = state.storage.sql
    const session = sql.exec<{ handled: number }>('SELECT handled FROM dws_sessions WHERE id = ?', id).one()
    const rows = sql
      .exec<{ handled_for: number | null; handled: number | null; frame: string }>(
        'SELECT handled_for, handled, frame FROM dws_log ORDER BY seq',
      )
      .toArray()
      .map((row) => [row.handled_for, row.handled, row.frame] as const)
    return { handled: session.handled, rows }
  })
}

/** What the room's message handler ran, in order, as it recorded it; of one session when `id` is given. */
async function messagesRun(room: string, id?: number): Promise<unknown[]> {
  return (await sessionsRoom(room).log())
    .filter((entry) => entry.event === 'message' && (id === undefined || entry.id === id))
    .map((entry) => entry.message)
}

describe("a message's handled mark, kept in the row its handler sent (src/object/session/handledStamps.ts)", () => {
  it("writes no row of the session's own for a handler that sends, and a hibernated object reads the count back from the log", async () => {
    const session = await opened('/sessions/stamped')
    session.send('echo:a')
    session.send('echo:b')
    expect(await session.payloads(2)).toEqual(['echo:a', 'echo:b'])
    const before = await stored('stamped', session.id)
    expect(before.handled).toBe(0)
    expect(before.rows).toEqual([
      [null, null, `open:${String(session.id)}:false`],
      [session.id, 1, 'echo:a'],
      [session.id, 2, 'echo:b'],
    ])

    // Memory goes, the socket stays: the woken object knows message 2 was handled only from the log.
    await evictDurableObject(sessionsRoom('stamped'), { webSockets: 'hibernate' })
    session.send('seq')
    expect(await session.nextPayload()).toBe('seq:3')
    await session.sync()
    expect(session.unacked).toEqual([])
    expect(await messagesRun('stamped')).toEqual(['echo:a', 'echo:b', 'seq'])
    session.close(1000)
  })

  it('resumes on a restarted object with the count the stamps kept, and runs no message twice', async () => {
    const first = await opened('/sessions/stamped-restart')
    first.send('echo:a')
    first.send('all:b')
    expect(await first.payloads(2)).toEqual(['echo:a', 'all:b'])
    // Every socket closed and memory gone, as a deploy does; the client's two messages were never acked.
    await evictDurableObject(sessionsRoom('stamped-restart'), { webSockets: 'close' })
    await first.whenClosed()
    expect(first.unacked).toEqual([1, 2])

    const second = await first.resume('/sessions/stamped-restart')
    expect(second.welcome).toMatchObject({ resumed: true, handled: 2 })
    expect(await second.nextPayload()).toBe(`open:${String(first.id)}:true`)
    second.send('seq')
    expect(await second.nextPayload()).toBe('seq:3')
    expect(await messagesRun('stamped-restart')).toEqual(['echo:a', 'all:b', 'seq'])
    second.close(1000)
  })

  it("writes the session's own row for a handler that sends nothing", async () => {
    const session = await opened('/sessions/unstamped')
    session.send('set:k=v')
    session.send('echo:after')
    expect(await session.nextPayload()).toBe('echo:after')
    const { handled, rows } = await stored('unstamped', session.id)
    expect(handled).toBe(1)
    expect(rows.at(-1)).toEqual([session.id, 2, 'echo:after'])
    session.close(1000)
  })

  it("folds the stamps of rows the log trims into the session's row first, so a quiet session's count never goes back", async () => {
    const quiet = await opened('/sessions/stamps-trimmed')
    quiet.send('echo:a')
    quiet.send('echo:b')
    expect(await quiet.payloads(2)).toEqual(['echo:a', 'echo:b'])
    // Another session's replies push the quiet one's stamped rows out of the log.
    const busy = await opened('/sessions/stamps-trimmed')
    const count = SESSION_MAX_MESSAGES * 2
    for (let n = 1; n <= count; n++) busy.send(`echo:${String(n)}`)
    expect(await busy.payloads(count)).toHaveLength(count)
    const { handled, rows } = await stored('stamps-trimmed', quiet.id)
    expect(rows.some(([id]) => id === quiet.id)).toBe(false)
    expect(handled).toBe(2)
    // Unacked still, so the client would send them again; the server's position frame moved it past the trim.
    expect(quiet.unacked).toEqual([1, 2])
    await quiet.expectNothingWithin(50)

    await evictDurableObject(sessionsRoom('stamps-trimmed'), { webSockets: 'close' })
    await quiet.whenClosed()
    const again = await quiet.resume('/sessions/stamps-trimmed')
    expect(again.welcome).toMatchObject({ resumed: true, handled: 2 })
    expect(await again.nextPayload()).toBe(`open:${String(quiet.id)}:true`)
    expect(await messagesRun('stamps-trimmed', quiet.id)).toEqual(['echo:a', 'echo:b'])
    again.close(1000)
  })

  it('takes the stamp off again when the handler returns a promise instead of finishing, and marks the message once it is done', async () => {
    const room = sessionsRoom('stamp-pending')
    const session = await opened('/sessions/stamp-pending')
    session.send('echo:a')
    session.send('send-hold:b')
    expect(await session.payloads(2)).toEqual(['echo:a', 'sending:b'])
    const waiting = await stored('stamp-pending', session.id)
    expect(waiting.rows.at(-1)).toEqual([null, null, 'sending:b'])
    expect(waiting.handled).toBe(0)

    // Were the object to go now, message 2 would not count as handled and would run again.
    await room.release('b')
    expect(await session.nextPayload()).toBe('held:b')
    const done = await stored('stamp-pending', session.id)
    expect(done.handled).toBe(2)
    expect(done.rows.at(-1)).toEqual([null, null, 'held:b'])
    session.close(1000)
  })

  it('stamps nothing for an async handler, whose replies go out while it may still run', async () => {
    const session = await opened('/sessions/stamp-async')
    const c = session.request('double:x')
    expect(await session.nextPayload()).toBe('xx')
    const { handled, rows } = await stored('stamp-async', session.id)
    expect(handled).toBe(c)
    expect(rows.at(-1)).toEqual([null, null, 'xx'])
    session.close(1000)
  })

  it('adds the stamp columns to a log an earlier version made, and stamps its new rows', async () => {
    const found = await runInDurableObject(sessionsRoom('stamps-migrated'), (_instance, state) => {
      const sql = state.storage.sql
      sql.exec(`CREATE TABLE dws_log (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, target INTEGER, tag TEXT,
        excluded TEXT, frame BLOB NOT NULL, mark TEXT NOT NULL DEFAULT '')`)
      sql.exec("INSERT INTO dws_log (seq, at, frame) VALUES (1, 0, 'old')")
      const stamps = new HandledStamps(sql)
      const log = new SessionLog(sql, { window: 60_000, maxMessages: 100, maxBytes: 1_000_000 }, stamps)
      // A handler's run as the link makes it: a send, then its end, which the stamp already carries.
      const seq = stamps.during(7, 3, () => {
        const sent = log.append(7, null, null, 'new', Date.now())
        expect(stamps.carried(7, 3)).toBe(true)
        return sent
      })
      return {
        seq,
        latest: new HandledStamps(sql).latest(7),
        rows: sql.exec('SELECT seq, handled_for, handled, frame FROM dws_log ORDER BY seq').toArray(),
      }
    })
    expect(found).toEqual({
      seq: 2,
      latest: 3,
      rows: [
        { seq: 1, handled_for: null, handled: null, frame: 'old' },
        { seq: 2, handled_for: 7, handled: 3, frame: 'new' },
      ],
    })
  })
})
