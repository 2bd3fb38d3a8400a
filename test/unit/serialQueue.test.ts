import { afterEach, describe, expect, it, vi } from 'vitest'
import { SerialQueue } from '../../src/core/serialQueue.js'

/** A promise the test settles by hand. */
function gate(): { promise: Promise<void>; open: () => void; fail: (error: Error) => void } {
  let open!: () => void
  let fail!: (error: Error) => void
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve
    fail = reject
  })
  return { promise, open, fail }
}

/** The promise of a task that went async or had to wait; a task that finished at once has none. */
function pending(result: Promise<void> | undefined): Promise<void> {
  if (result === undefined) throw new Error('the task ran to completion at once, with nothing to wait for')
  return result
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('SerialQueue.run(task)', () => {
  it('runs a synchronous task at once and returns nothing to wait for', () => {
    const queue = new SerialQueue()
    const seen: number[] = []
    expect(queue.run(() => seen.push(1))).toBeUndefined()
    expect(seen).toEqual([1])
  })

  it('holds later tasks behind an async one until it settles, then runs them in order', async () => {
    const queue = new SerialQueue()
    const seen: string[] = []
    const first = gate()
    const a = pending(
      queue.run(async () => {
        seen.push('a start')
        await first.promise
        seen.push('a end')
      }),
    )
    const b = pending(queue.run(() => seen.push('b')))
    const last = pending(queue.run(() => seen.push('c')))
    expect(seen).toEqual(['a start'])
    first.open()
    await Promise.all([a, b, last])
    expect(seen).toEqual(['a start', 'a end', 'b', 'c'])
  })

  it('keeps order for tasks that arrive one at a time while an earlier one is still pending', async () => {
    const queue = new SerialQueue()
    const seen: number[] = []
    const gates = [gate(), gate(), gate()]
    const done = gates.map((g, i) =>
      pending(
        queue.run(async () => {
          await g.promise
          seen.push(i)
        }),
      ),
    )
    // Settle them out of order: the queue must still finish them in the order they came.
    gates[2]?.open()
    gates[1]?.open()
    await Promise.resolve()
    expect(seen).toEqual([])
    gates[0]?.open()
    await Promise.all(done)
    expect(seen).toEqual([0, 1, 2])
  })

  it('keeps a task that arrives after an earlier one settled behind the one still pending', async () => {
    const queue = new SerialQueue()
    const seen: string[] = []
    const a = gate()
    const b = gate()
    const first = queue.run(() => a.promise)
    const second = pending(
      queue.run(async () => {
        await b.promise
        seen.push('b')
      }),
    )
    a.open()
    await first
    // a is done, b is not: c must still wait for b rather than run at once.
    const last = queue.run(() => seen.push('c'))
    expect(last).toBeDefined()
    expect(seen).toEqual([])
    b.open()
    await Promise.all([second, last])
    expect(seen).toEqual(['b', 'c'])
  })

  it('runs synchronously again once the queue has drained', async () => {
    const queue = new SerialQueue()
    const pending = gate()
    const waited = queue.run(() => pending.promise)
    pending.open()
    await waited
    const seen: number[] = []
    expect(queue.run(() => seen.push(1))).toBeUndefined()
    expect(seen).toEqual([1])
  })

  it('logs a failed task and goes on with the next one instead of rethrowing', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    const queue = new SerialQueue()
    const failing = gate()
    const seen: string[] = []
    const first = queue.run(() => failing.promise)
    const next = queue.run(() => seen.push('next'))
    failing.fail(new Error('boom'))
    await expect(first).resolves.toBeUndefined()
    await next
    expect(seen).toEqual(['next'])
    expect(logged).toHaveBeenCalledWith('[durable-websocket] a queued task failed:', new Error('boom'))
  })
})
