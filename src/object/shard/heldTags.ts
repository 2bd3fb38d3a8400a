import { log } from '../../core/log.js'
import type { Batch, ShardStub, TagReport } from './messages.js'

/** Per tag, the version at which this leaf first held it. */
const TAG_KEY = 'durable-websocket:shard-tag:'
/** How many times this leaf gained tags, and the epoch that names its storage. */
const VERSION_KEY = 'durable-websocket:shard-tags-version'

/** Tries of one report; a leaf that gives up reports again when the next batch shows the root behind. */
const REPORT_ATTEMPTS = 5
const FIRST_RETRY_MS = 10

/**
 * The tags a leaf's sockets and sessions hold, as the root must know them
 * to send the leaf only the `to(tag)` rows it needs (shard/leafRoute.ts).
 *
 * The rule: a leaf must never miss a row, and may get one it does not
 * need. So the set only grows (a tag whose sockets all left still counts:
 * a suspended session may come back with it), it is stored in the same
 * turn as the accept that gained a tag, and each gain counts a new version.
 * The root's knowledge lags while a report is on its way; each batch says
 * which version it was filtered with, and a leaf that holds a newer one does
 * not trust the batch's gaps: it pulls the whole stretch unfiltered
 * ({@link trusts}). Delivery at the leaf filters by its own sockets anyway.
 */
export class HeldTags {
  readonly #ctx: DurableObjectState
  readonly #leaf: number
  readonly #root: () => ShardStub
  readonly #label: string
  #tags: Map<string, number> | undefined
  #state: { epoch: string; version: number } | undefined
  /** The version the root holds, as far as this instance heard; undefined: send it all. */
  #rootKnows: number | undefined
  #reporting = false

  constructor(ctx: DurableObjectState, leaf: number, root: () => ShardStub, label: string) {
    this.#ctx = ctx
    this.#leaf = leaf
    this.#root = root
    this.#label = label
  }

  /** Counts the tags of a socket just accepted; a new one is stored now and reported soon. */
  hold(tags: readonly string[]): void {
    const held = this.#held()
    const gained = tags.filter((tag) => !held.has(tag))
    if (gained.length === 0) return
    const state = this.#current()
    const version = state.version + 1
    const kv = this.#ctx.storage.kv
    for (const tag of gained) {
      held.set(tag, version)
      kv.put(`${TAG_KEY}${tag}`, version)
    }
    this.#state = { epoch: state.epoch, version }
    kv.put(VERSION_KEY, this.#state)
    this.#report()
  }

  /**
   * Whether the batch holds every row this leaf needs from its stretch:
   * true when the root did not filter by tag, or filtered with what it knows
   * of this leaf's tags now.
   */
  trusts({ tags }: Batch): boolean {
    if (tags === undefined || tags === null) return true
    const { epoch, version } = this.#current()
    return tags.epoch === epoch && tags.version >= version
  }

  /** Learns from a batch what the root knows of this leaf's tags, and tells it more when it is behind. */
  heard({ tags }: Batch): void {
    if (tags === undefined) return
    const { epoch, version } = this.#current()
    if (tags?.epoch !== epoch) this.#rootKnows = undefined
    else this.#rootKnows = Math.max(this.#rootKnows ?? -1, tags.version)
    if (this.#rootKnows === undefined || this.#rootKnows < version) this.#report()
  }

  /** One report at a time, until the root holds this leaf's current version. */
  #report(): void {
    if (this.#reporting) return
    this.#reporting = true
    const reporting = this.#reportUntilKnown().finally(() => {
      this.#reporting = false
    })
    this.#ctx.waitUntil(reporting)
  }

  async #reportUntilKnown(): Promise<void> {
    for (let failures = 0; ;) {
      const { epoch, version } = this.#current()
      const since = this.#rootKnows ?? 0
      if (since >= version && this.#rootKnows !== undefined) return
      const report: TagReport = { leaf: this.#leaf, epoch, version, since, tags: this.#gainedAfter(since) }
      try {
        const known = await this.#root().shardTags(report)
        this.#rootKnows = known < 0 ? undefined : known
        failures = 0
      } catch (error) {
        failures++
        if (failures >= REPORT_ATTEMPTS) {
          log.warn(
            `${this.#label} could not tell its root its tags; until it does, it pulls whole stretches:`,
            error,
          )
          return
        }
        await new Promise((resolve) => setTimeout(resolve, FIRST_RETRY_MS * 2 ** (failures - 1)))
      }
    }
  }

  #gainedAfter(since: number): string[] {
    const gained: string[] = []
    for (const [tag, version] of this.#held()) if (version > since) gained.push(tag)
    return gained
  }

  #held(): Map<string, number> {
    if (this.#tags === undefined) {
      this.#tags = new Map()
      for (const [key, version] of this.#ctx.storage.kv.list<number>({ prefix: TAG_KEY }))
        this.#tags.set(key.slice(TAG_KEY.length), version)
    }
    return this.#tags
  }

  #current(): { epoch: string; version: number } {
    if (this.#state === undefined) {
      const kv = this.#ctx.storage.kv
      this.#state = kv.get<{ epoch: string; version: number }>(VERSION_KEY)
      if (this.#state === undefined) {
        this.#state = { epoch: crypto.randomUUID(), version: 0 }
        kv.put(VERSION_KEY, this.#state)
      }
    }
    return this.#state
  }
}
