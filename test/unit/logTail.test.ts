import { describe, expect, it } from 'vitest'
import { LogTail, type TailRow } from '../../src/object/session/logTail.js'

function row(seq: number, extra: Partial<TailRow> = {}): TailRow {
  return {
    seq,
    target: null,
    tag: null,
    except: null,
    frame: `m${String(seq)}`,
    mark: '',
    size: 10,
    ...extra,
  }
}

/** The rows after `after` for session `id`, the way the log's SQL picks them (log.ts `pending`). */
function bySql(rows: readonly TailRow[], id: number, tags: readonly string[], after: number, limit: number) {
  const found = rows.filter((r) => r.seq > after && (r.target === null || r.target === id)).slice(0, limit)
  const pending = found
    .filter((r) => (r.tag === null || tags.includes(r.tag)) && r.except?.includes(id) !== true)
    .map((r) => ({ seq: r.seq, size: r.size }))
  return { pending, through: found.at(-1)?.seq, full: found.length === limit }
}

describe('LogTail (the newest rows of the session log, in memory)', () => {
  it('holds nothing until the log tells it where it stands, then keeps every row written after', () => {
    const tail = new LogTail({ rows: 100, bytes: 10_000 })
    tail.appended(row(1))
    expect(tail.covers(0)).toBe(false)
    tail.learned(1, [])
    tail.appended(row(2))
    tail.appended(row(3))
    expect(tail.covers(1)).toBe(true)
    expect(tail.covers(0)).toBe(false)
    expect(tail.pending(7, [], 1, 10).pending.map((p) => p.seq)).toEqual([2, 3])
  })

  it('picks the same rows for a session as the SQL query does: target, tag, exclusions, page limit', () => {
    const rows = [
      row(11),
      row(12, { target: 7 }),
      row(13, { target: 8 }),
      row(14, { tag: 'red' }),
      row(15, { tag: 'blue' }),
      row(16, { except: [7, 9] }),
      row(17, { except: [9] }),
      row(18, { target: 7, mark: '=3' }),
      row(19),
    ]
    const tail = new LogTail({ rows: 100, bytes: 10_000 })
    tail.learned(10, rows)
    for (const after of [10, 12, 15, 19])
      for (const limit of [1, 2, 3, 64])
        for (const [id, tags] of [
          [7, ['red']],
          [8, []],
          [9, ['blue', 'red']],
        ] as const)
          expect(tail.pending(id, tags, after, limit)).toEqual(bySql(rows, id, tags, after, limit))
  })

  it('numbers each frame once, however many replays send it', () => {
    const tail = new LogTail({ rows: 100, bytes: 10_000 })
    tail.learned(0, [row(1), row(2, { mark: '=4' }), row(3)])
    const first = tail.numberedFrames([1, 2, 3])
    expect(first?.map((f) => f.frame)).toEqual(['1 m1', '2=4 m2', '3 m3'])
    const again = tail.numberedFrames([2, 3])
    expect(again?.[0]?.frame).toBe(first?.[1]?.frame)
    // A number it does not hold: no partial answer, the log reads SQLite instead.
    expect(tail.numberedFrames([3, 4])).toBeUndefined()
  })

  it('lets its oldest rows go past its row and byte limits, and no longer covers them', () => {
    const tail = new LogTail({ rows: 3, bytes: 25 })
    tail.learned(0, [])
    for (let seq = 1; seq <= 5; seq++) tail.appended(row(seq))
    // 10 bytes a row: the byte limit holds it to two.
    expect(tail.rows).toBe(2)
    expect(tail.after).toBe(3)
    expect(tail.covers(2)).toBe(false)
    expect(tail.pending(1, [], 3, 10).pending.map((p) => p.seq)).toEqual([4, 5])
    // One frame larger than the whole limit is still held, alone.
    tail.appended(row(6, { size: 100 }))
    expect(tail.rows).toBe(1)
    expect(tail.after).toBe(5)
  })

  it('follows the log: trims, older rows put in front, and forgetting', () => {
    const tail = new LogTail({ rows: 100, bytes: 10_000 })
    tail.learned(5, [row(6), row(7), row(8)])
    tail.learned(3, [row(4), row(5), row(6), row(7), row(8)])
    expect(tail.after).toBe(3)
    expect(tail.pending(1, [], 3, 10).pending.map((p) => p.seq)).toEqual([4, 5, 6, 7, 8])
    tail.trimmed(6)
    expect(tail.after).toBe(6)
    expect(tail.pending(1, [], 6, 10).pending.map((p) => p.seq)).toEqual([7, 8])
    tail.forget()
    expect(tail.covers(8)).toBe(false)
    expect(tail.rows).toBe(0)
  })

  it('reads the newest rows in once, from where a replay starts or at most its size back from the head', () => {
    const reads: [number, number][] = []
    const read = (from: number, through: number): TailRow[] => {
      reads.push([from, through])
      return Array.from({ length: through - from }, (_, i) => row(from + 1 + i))
    }
    const tail = new LogTail({ rows: 10, bytes: 10_000 })
    // Far behind: the tail starts at its size back from the head; that replay reads SQLite.
    tail.warm(50, 100, read)
    expect(reads).toEqual([[90, 100]])
    expect(tail.covers(50)).toBe(false)
    expect(tail.covers(90)).toBe(true)
    // Within its size: rows in front of what it holds are read, and nothing twice.
    const small = new LogTail({ rows: 10, bytes: 10_000 })
    small.warm(97, 100, read)
    small.warm(95, 100, read)
    small.warm(96, 100, read)
    expect(reads.slice(1)).toEqual([
      [97, 100],
      [95, 97],
    ])
    expect(small.pending(1, [], 95, 64).pending.map((p) => p.seq)).toEqual([96, 97, 98, 99, 100])
    // More than its bytes allow: not read in.
    const tight = new LogTail({ rows: 10, bytes: 15 })
    tight.warm(97, 100, read)
    expect(tight.covers(97)).toBe(false)
  })

  it('keeps its own copy of a buffer and of the exclusions, which the app may change after sending', () => {
    const tail = new LogTail({ rows: 100, bytes: 10_000 })
    tail.learned(0, [])
    const payload = new Uint8Array([1, 2, 3])
    const except = [4]
    tail.appended(row(1, { frame: payload.buffer, except, size: 3 }))
    payload[0] = 9
    except.push(7)
    expect(tail.pending(7, [], 0, 10).pending.map((p) => p.seq)).toEqual([1])
    const [sent] = tail.numberedFrames([1]) ?? []
    expect([...new Uint8Array(sent?.frame as ArrayBuffer).slice(-3)]).toEqual([1, 2, 3])
  })

  it('stays correct over many rows coming and going (the array is cut now and then)', () => {
    const tail = new LogTail({ rows: 300, bytes: 1_000_000 })
    tail.learned(0, [])
    for (let seq = 1; seq <= 2_000; seq++) tail.appended(row(seq))
    expect(tail.rows).toBe(300)
    expect(tail.after).toBe(1_700)
    const frames = tail.numberedFrames([1_701, 1_850, 2_000])
    expect(frames?.map((f) => f.frame)).toEqual(['1701 m1701', '1850 m1850', '2000 m2000'])
    expect(tail.pending(1, [], 1_995, 64).pending.map((p) => p.seq)).toEqual([
      1_996, 1_997, 1_998, 1_999, 2_000,
    ])
  })
})
