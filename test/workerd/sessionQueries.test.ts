import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { HandledStamps } from '../../src/object/session/handledStamps.js'
import { SessionLog } from '../../src/object/session/log.js'
import { SessionStore } from '../../src/object/session/store.js'
import { numbered } from '../../src/shared/dataFrames.js'
import { sessionsRoom } from './sessionFixture.js'

/** The object's SQL, with the rows each statement read, as the runtime counts them. */
function counting(sql: SqlStorage): { sql: SqlStorage; lastRowsRead: () => number } {
  let last: SqlStorageCursor<Record<string, SqlStorageValue>> | undefined
  const wrapped = {
    exec(query: string, ...bindings: unknown[]) {
      last = sql.exec(query, ...bindings)
      return last
    },
  } as unknown as SqlStorage
  return {
    sql: wrapped,
    lastRowsRead: () => {
      if (last === undefined) throw new Error('no statement ran')
      // Read the rest first: the count grows as the cursor is read.
      last.toArray()
      return last.rowsRead
    },
  }
}

/** The object's SQL, with the rows all statements read together. */
function countingAll(sql: SqlStorage): { sql: SqlStorage; rowsRead: () => number } {
  const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = []
  const wrapped = {
    exec(query: string, ...bindings: unknown[]) {
      const cursor = sql.exec(query, ...bindings)
      cursors.push(cursor)
      return cursor
    },
  } as unknown as SqlStorage
  return { sql: wrapped, rowsRead: () => cursors.reduce((sum, cursor) => sum + cursor.rowsRead, 0) }
}

const SESSIONS = 400

/**
 * A storm brings every session of a room back at once, so each resume's
 * queries must cost the same in a room of 400 sessions as in a room of 4:
 * a statement that scans the table makes N resumes cost N² rows.
 */
describe('the session store under a room of many sessions', () => {
  it('finds a session by its current or its previous token, and says whether any is left, reading a few rows, not the table', async () => {
    await runInDurableObject(sessionsRoom('queries'), (_instance, state) => {
      const { sql, lastRowsRead } = counting(state.storage.sql)
      // The stamps read the log once per instance, not per find: they get the uncounted SQL.
      const store = new SessionStore(sql, 60_000, 86_400_000, new HandledStamps(state.storage.sql))
      const now = Date.now()
      for (let id = 1; id <= SESSIONS; id++) store.create(id, `hash-${String(id)}`, [], 0, now, undefined)

      expect(store.find('hash-250')?.id).toBe(250)
      expect(lastRowsRead()).toBeLessThanOrEqual(2)

      // After a resume the token just used stays valid as the previous one, until confirmed.
      store.rotate(250, 'hash-250-new', 'hash-250')
      const byPrevious = store.find('hash-250')
      expect(byPrevious?.id).toBe(250)
      expect(byPrevious?.matchedPrevious).toBe(true)
      expect(lastRowsRead()).toBeLessThanOrEqual(3)
      expect(store.row('hash-250-new')?.id).toBe(250)
      expect(lastRowsRead()).toBeLessThanOrEqual(2)

      expect(store.find('no-such-hash')).toBeUndefined()
      expect(lastRowsRead()).toBeLessThanOrEqual(2)

      expect(store.remove(7)).toBe(true)
      expect(lastRowsRead()).toBeLessThanOrEqual(1)
      for (let id = 1; id <= SESSIONS; id++) store.remove(id)
      expect(store.any()).toBe(false)
    })
  })
})

describe('the session log under a storm of resumes', () => {
  it('reads the rows every resume replays once, not once per session, and replays what SQLite holds', async () => {
    await runInDurableObject(sessionsRoom('tail'), (_instance, state) => {
      const bounds = { window: 60_000, maxMessages: 5_000, maxBytes: 10_000_000 }
      const writer = new SessionLog(state.storage.sql, bounds, new HandledStamps(state.storage.sql))
      for (let seq = 1; seq <= 40; seq++)
        writer.append(
          seq % 5 === 0 ? 7 : null,
          seq % 3 === 0 ? 'red' : null,
          seq % 7 === 0 ? [7] : null,
          `f${String(seq)}`,
          Date.now(),
        )
      // A new instance, as after a deploy: nothing of the log in memory.
      const { sql, rowsRead } = countingAll(state.storage.sql)
      const log = new SessionLog(sql, bounds, new HandledStamps(sql))
      for (let session = 0; session < 100; session++) {
        const after = 20 + (session % 10)
        const page = log.pending(7, ['red'], after, 64)
        const seqs = page.pending.map((p) => p.seq)
        const expected = Array.from({ length: 40 - after }, (_, i) => after + 1 + i).filter(
          (seq) => seq % 7 !== 0,
        )
        expect(seqs).toEqual(expected)
        expect(log.replayFrames(seqs)).toEqual(
          expected.map((seq) => ({ seq, frame: numbered(seq, `f${String(seq)}`) })),
        )
      }
      // The 20 newest rows once, the head, and a few rows of bookkeeping; 100 sessions reading
      // their own would be well over 1,000.
      expect(rowsRead()).toBeLessThanOrEqual(40)
    })
  })
})
