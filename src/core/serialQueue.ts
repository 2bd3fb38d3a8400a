/**
 * Runs tasks one after another. A task that finishes synchronously runs at
 * once with no promise allocated, which keeps the per-message hot path cheap;
 * only once a task goes async do later tasks wait behind it. Tasks must
 * handle their own errors: a rejection here is logged, never rethrown.
 */
export class SerialQueue {
  #tail: Promise<void> | undefined

  run(task: () => unknown): Promise<void> | undefined {
    const tail = this.#tail
    if (tail !== undefined) return this.#chain(tail.then(task))
    const result = task()
    return isThenable(result) ? this.#chain(Promise.resolve(result)) : undefined
  }

  #chain(work: Promise<unknown>): Promise<void> {
    const settled: Promise<void> = work.then(
      () => this.#release(settled),
      (error: unknown) => {
        console.error('[durable-websocket] a queued task failed:', error)
        this.#release(settled)
      },
    )
    this.#tail = settled
    return settled
  }

  #release(settled: Promise<void>): void {
    if (this.#tail === settled) this.#tail = undefined
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  )
}
