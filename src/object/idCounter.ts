const LAST_ID_KEY = 'durable-websocket:last-connection-id'

/**
 * The object's connection ids: 1, 2, 3, … for as long as the object exists,
 * never reused, because the last one handed out is kept in durable storage.
 * Storage is read once per object instance and written once per connection.
 */
export class IdCounter {
  readonly #kv: SyncKvStorage
  #last: number | undefined

  constructor(kv: SyncKvStorage) {
    this.#kv = kv
  }

  get last(): number {
    this.#last ??= this.#kv.get<number>(LAST_ID_KEY) ?? 0
    return this.#last
  }

  next(): number {
    const id = this.last + 1
    this.#kv.put(LAST_ID_KEY, id)
    this.#last = id
    return id
  }
}
