import { describe } from '../shared/describe.js'
import { ClientError } from './ClientError.js'

type Listener = (...args: never[]) => void

/**
 * A typed event emitter with the one behaviour a socket client needs: a
 * listener that throws does not stop the others nor the client's own
 * bookkeeping. Its error is rethrown on a fresh task, so it still shows up
 * where uncaught errors do (the console, `window.onerror`, Node's
 * `uncaughtException`).
 */
export class Emitter<Events extends { [E in keyof Events]: Listener }> {
  readonly #names: readonly (keyof Events & string)[]
  readonly #listeners = new Map<keyof Events, Set<Listener>>()

  constructor(names: readonly (keyof Events & string)[]) {
    this.#names = names
  }

  /** Adds a listener and returns the function that removes it. */
  on<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    if (!this.#names.includes(event as keyof Events & string)) {
      throw new ClientError(
        'ERR_DWS_UNKNOWN_EVENT',
        `Unknown event ${describe(event)}. Known events: ${this.#names.join(', ')}.`,
      )
    }
    if (typeof listener !== 'function') {
      throw new ClientError(
        'ERR_DWS_INVALID_LISTENER',
        `The listener for "${String(event)}" must be a function, got ${describe(listener)}.`,
      )
    }
    let listeners = this.#listeners.get(event)
    if (listeners === undefined) this.#listeners.set(event, (listeners = new Set()))
    // A wrapper per call, so adding one function twice gives two independent subscriptions.
    const entry: Listener = (...args) => listener(...args)
    listeners.add(entry)
    return () => {
      listeners.delete(entry)
    }
  }

  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    const listeners = this.#listeners.get(event)
    if (listeners === undefined) return
    for (const listener of [...listeners]) {
      try {
        ;(listener as (...args: Parameters<Events[E]>) => void)(...args)
      } catch (error) {
        queueMicrotask(() => {
          throw error
        })
      }
    }
  }
}
