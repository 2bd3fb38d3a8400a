import type { Client, ClientEventName, ClientEvents } from '../../src/client/index.js'

const WAIT_MS = 10_000

type Payload<Message, E extends ClientEventName> = Parameters<ClientEvents<Message>[E]>[0]

export interface RecordedEvent {
  name: ClientEventName
  value: unknown
}

/**
 * Everything a client emits, in order, so a test can act first and look
 * afterwards. `next` hands out each event once, oldest first; every wait is bounded.
 */
export interface ClientEventLog<Message> {
  readonly all: RecordedEvent[]
  /** The values of every event of this name so far. */
  of<E extends ClientEventName>(name: E): Payload<Message, E>[]
  /** The next event of this name not handed out yet that matches, waiting for it if need be. */
  next<E extends ClientEventName>(
    name: E,
    matches?: (value: Payload<Message, E>) => boolean,
    ms?: number,
  ): Promise<Payload<Message, E>>
}

const NAMES: readonly ClientEventName[] = [
  'open',
  'reset',
  'message',
  'binary',
  'close',
  'reconnecting',
  'error',
  'presence',
]

export function recordEvents<Message>(client: Client<Message, never>): ClientEventLog<Message> {
  const all: RecordedEvent[] = []
  const taken = new Set<RecordedEvent>()
  const waiters = new Set<() => void>()
  for (const name of NAMES) {
    client.on(name, (value: unknown) => {
      all.push({ name, value })
      for (const wake of [...waiters]) wake()
    })
  }
  return {
    all,
    of: <E extends ClientEventName>(name: E) =>
      all.filter((event) => event.name === name).map((event) => event.value as Payload<Message, E>),
    next: <E extends ClientEventName>(
      name: E,
      matches: (value: Payload<Message, E>) => boolean = () => true,
      ms = WAIT_MS,
    ) =>
      new Promise<Payload<Message, E>>((resolve, reject) => {
        const look = (): boolean => {
          const found = all.find(
            (event) =>
              event.name === name && !taken.has(event) && matches(event.value as Payload<Message, E>),
          )
          if (found === undefined) return false
          taken.add(found)
          resolve(found.value as Payload<Message, E>)
          return true
        }
        if (look()) return
        const wake = (): void => {
          if (!look()) return
          waiters.delete(wake)
          clearTimeout(timer)
        }
        const timer = setTimeout(() => {
          waiters.delete(wake)
          reject(
            new Error(
              `no matching "${name}" event within ${String(ms)} ms; events so far: ${JSON.stringify(all)}`,
            ),
          )
        }, ms)
        waiters.add(wake)
      }),
  }
}
