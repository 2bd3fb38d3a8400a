import type { LoggedRow, SessionLog } from '../session/log.js'
import type { Batch, TagReport, TagsSeen } from './messages.js'
import { leafOfId } from './names.js'

/** Rows the root reads for one batch at most; a leaf further behind gets the rest in the next. */
export const BATCH_ROWS = 512

/** What the root knows of one leaf's tags: a set as of one of the leaf's reports. */
interface KnownTags extends TagsSeen {
  readonly tags: Set<string>
}

/**
 * What the root knows of one leaf, and which rows of the log are for it: a
 * broadcast always, a send only when the id is the leaf's, a `to(tag)` when
 * the leaf said it holds the tag, or when the root has not heard its tags
 * yet (this instance started after the leaf's last report). The root may
 * learn of a tag late; the batch says which report it filtered with, and a
 * leaf that gained a tag since pulls the whole stretch instead
 * (shard/heldTags.ts). So a row can reach a leaf that does not need it,
 * never miss one that does.
 */
export class LeafRoute {
  readonly index: number
  /** The leaf that holds an id now: the one that handed it out, unless the session moved (shard/sessionRoutes.ts). */
  readonly #where: (id: number) => number | undefined
  /** The last number the leaf said it applied (kept in the root's storage, shard/root.ts). */
  confirmed = 0
  /** Where the root started this leaf: a leaf added to a room that had rows gets none before it (shard/span.ts). */
  start = 0
  /**
   * Rows after `confirmed` up to here held nothing for this leaf: the next
   * batch still starts after `confirmed` (so the leaf sees no gap) but reads
   * on from here. Only an empty stretch moves it, never a batch sent.
   */
  #considered = 0
  busy = false
  failures = 0
  #known: KnownTags | undefined

  constructor(index: number, where: (id: number) => number | undefined = leafOfId) {
    this.index = index
    this.#where = where
  }

  /** The tags this leaf holds as far as the root knows; undefined when it does not know. */
  get tags(): readonly string[] | undefined {
    return this.#known === undefined ? undefined : [...this.#known.tags].sort()
  }

  /**
   * The next batch for this leaf, or undefined when the log holds nothing
   * more for it: then no call is made, and the stretch looked at is not
   * counted as confirmed, only as considered.
   */
  next(log: SessionLog): Batch | undefined {
    const confirmed = this.confirmed
    let after = Math.max(confirmed, this.#considered)
    const head = log.head()
    while (after < head) {
      const rows = log.rows(after, BATCH_ROWS)
      const last = rows.at(-1)?.seq
      if (last === undefined) break
      const messages = rows.filter((row) => this.#wants(row))
      if (messages.length > 0) {
        const known = this.#known
        const tags = known === undefined ? null : { epoch: known.epoch, version: known.version }
        return { from: confirmed + 1, through: last, messages: messages.map(message), tags }
      }
      after = last
      this.#considered = last
    }
    return undefined
  }

  /** The number through which this leaf needs nothing more: what it confirmed, or found empty for it. */
  get settled(): number {
    return Math.max(this.confirmed, this.#considered)
  }

  /** Whether the log has rows past what this leaf confirmed or the root looked at for it. */
  behind(log: SessionLog): boolean {
    return this.settled < log.head()
  }

  answered(applied: number): void {
    this.confirmed = Math.max(this.confirmed, applied)
    this.failures = 0
  }

  /**
   * A leaf's report of its tags; answers the version the root now holds for
   * the leaf's epoch, -1 when it needs the whole set (`since` 0) first. A
   * tag it learns puts the rows it skipped for this leaf back in view.
   */
  learn({ epoch, since, version, tags }: TagReport): number {
    const known = this.#known
    if (since === 0) this.#known = { epoch, version, tags: new Set(tags) }
    else if (known?.epoch !== epoch || known.version < since) return -1
    else if (version > known.version) {
      for (const tag of tags) known.tags.add(tag)
      this.#known = { epoch, version, tags: known.tags }
    }
    this.#considered = 0
    return this.#known?.version ?? -1
  }

  /**
   * A session holding these tags moved here: their rows come here from now
   * on, before the leaf's own report of them arrives. Only widens the set,
   * so at worst the leaf gets rows it does not need.
   */
  gained(tags: readonly string[]): void {
    if (this.#known === undefined) return
    for (const tag of tags) this.#known.tags.add(tag)
  }

  #wants({ target, tag }: LoggedRow): boolean {
    if (target !== null) return this.#where(target) === this.index
    if (tag !== null) return this.#known === undefined || this.#known.tags.has(tag)
    return true
  }
}

function message({ seq, target, tag, except, frame, mark }: LoggedRow): Batch['messages'][number] {
  return { seq, target, tag, except, frame, mark }
}
