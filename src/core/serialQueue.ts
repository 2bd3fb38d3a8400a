/**
 * Runs tasks one after another. A task that finishes synchronously runs at
 * once with no promise allocated, which keeps the per-message hot path cheap;
 * only once a task goes async do later tasks wait behind it. Tasks must
 * handle their own errors: a rejection here is logged, never rethrown.
 */
export class SerialQueue {
  #tail: Promise<void> | undefined
  /** Tasks waiting behind a running one, and the sizes they were queued with. */
  #waiting = 0
  #waitingSize = 0

  /** How many tasks wait behind the running one. */
  get waiting(): number {
    return this.#waiting
  }

  /** The sum of the sizes the waiting tasks were queued with. */
  get waitingSize(): number {
    return this.#waitingSize
  }

  /** Settles once the running task, and those queued behind it by now, are done. */
  idle(): Promise<void> {
    return this.#tail ?? Promise.resolve()
  }

  /** Runs `task` now, or after the tasks before it; `size` counts towards {@link waitingSize} meanwhile. */
  run(task: () => unknown, size = 0): Promise<void> | undefined {
    const tail = this.#tail
    if (tail !== undefined) {
      this.#waiting++
      this.#waitingSize += size
      return this.#chain(
        tail.then(() => {
          this.#waiting--
          this.#waitingSize -= size
          return task()
        }),
      )
    }
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
