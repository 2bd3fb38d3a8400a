import type { ObjectSide } from '../../options.js'
import { SessionCloseCode, type SessionOffer } from '../../shared/sessionProtocol.js'
import { alarmNoLaterThan } from '../alarm.js'
import type { SessionDesk } from '../session/desk.js'
import type { SessionKeys } from '../session/opening.js'
import type { SessionRow } from '../session/store.js'
import type { ShardLeaf } from './leaf.js'
import type { ClaimAnswer } from './messages.js'
import { leafName, shardPart, shardStub, tokenLeaf } from './names.js'

/**
 * How long a hand-over waits for a handler still running for the session on
 * its old leaf. Past it the session moves anyway, and that message counts as
 * not handled: its client sends it again (docs/sharding.md, the edges).
 */
const HANDLER_WAIT_MS = 5_000

/** What claims need from the leaf's admission. */
export interface ClaimChecks {
  /** Whether this leaf takes one more socket: a full one refuses the resume anyway, so it claims nothing. */
  readonly hasRoom: () => boolean
  /** The refusal of a resume by someone other than the session's owner (3904). */
  readonly notYours: (id: number) => Response
}

/**
 * Sessions moving between the leaves of a sharded room (docs/sharding.md,
 * "Resuming on another leaf"). A session's record (token hashes, `handled`,
 * `data`, tags, owner) lives on one leaf at a time. A leaf that gets a
 * resume for a token it does not know claims the record from the leaf that
 * has it: the one the token's `l<n>_` prefix names, or, when that one gave
 * the session away already, the leaf it gave it to. The holder takes the
 * session in one synchronous step (find, mark as going, close the old
 * socket), so two leaves claiming the same session cannot both get it. The
 * claimer stores the
 * record, catches its log up to the client's position, and the resume goes
 * on as on the session's own leaf: every leaf has the same rows at the same
 * numbers, so the replay comes from its own copy.
 */
export class SessionClaims<Env, Data extends object, In, Out> {
  readonly #ctx: DurableObjectState
  readonly #env: unknown
  readonly #room: string
  readonly #binding: string
  readonly #leaf: ShardLeaf
  readonly #desk: SessionDesk<Env, Data, In, Out>
  readonly #checks: ClaimChecks
  /** Sessions being handed over while their last handler here finishes: the leaf each goes to, and when it is gone. */
  readonly #going = new Map<number, { readonly to: number; readonly gone: Promise<unknown> }>()

  constructor(
    ctx: DurableObjectState,
    env: unknown,
    leaf: ShardLeaf,
    { shards }: Pick<ObjectSide<Env, Data, In, Out, object>, 'shards'>,
    desk: SessionDesk<Env, Data, In, Out>,
    checks: ClaimChecks,
  ) {
    this.#ctx = ctx
    this.#env = env
    this.#room = shardPart(ctx.id.name ?? '').room
    this.#binding = shards?.binding ?? ''
    this.#leaf = leaf
    this.#desk = desk
    this.#checks = checks
  }

  /**
   * Before a resume's checks: when this leaf does not hold the session its
   * token names, fetches it from the leaf that does. Returns the keys with
   * the session found here now, or unchanged when no leaf had it (the
   * upgrade then starts a new session, as an unknown token always does), or
   * the refusal when the session is another owner's.
   */
  async claim(
    offer: SessionOffer,
    keys: SessionKeys,
    owner: () => string | undefined,
  ): Promise<SessionKeys | Response> {
    const resume = offer.resume
    const going = keys.found === undefined ? undefined : this.#going.get(keys.found.id)
    if (going !== undefined) {
      // A resume here while the session is on its way out: it follows the session once it is gone.
      await going.gone
      keys = { ...keys, found: this.#desk.store?.find(keys.usedHash) }
    }
    if (resume === undefined || keys.found !== undefined || keys.usedHash === '') return keys
    if (this.#desk.store === undefined || !this.#checks.hasRoom()) return keys
    const index = this.#leaf.index
    let holder = this.#movedTo(keys.usedHash) ?? tokenLeaf(resume.token)
    if (holder === undefined || holder === index) return keys
    let claimant: string | undefined
    try {
      claimant = owner()
    } catch {
      // The checks that follow call the same function, and answer its failure with a 500.
      return keys
    }
    const asked = new Set([index])
    while (!asked.has(holder)) {
      asked.add(holder)
      const stub = shardStub(this.#env, this.#binding, leafName(this.#room, holder))
      const answer = await stub.shardClaim(keys.usedHash, claimant ?? null, index)
      if (answer.kind === 'moved') {
        holder = answer.leaf
        continue
      }
      if (answer.kind === 'notYours') return this.#checks.notYours(answer.id)
      if (answer.kind === 'unknown') return keys
      const { session } = answer
      // Before the first await: a claim from another leaf that comes meanwhile then leaves its own trace.
      this.#forgetMove(session.token, session.previous)
      await this.#adopt(session)
      if (!(await this.#routeHere(session, resume.last))) {
        // The root's log no longer reaches the client's position: the session ends as any room ends
        // one whose log was trimmed past its client, and the upgrade starts a new one.
        this.#desk.endSuspended(session.id, SessionCloseCode.EXPIRED, 'Session expired')
        return { ...keys, found: undefined }
      }
      break
    }
    // Read last, after every await: another leaf may have claimed it from here in between.
    return { ...keys, found: this.#desk.store.find(keys.usedHash) }
  }

  /**
   * Another leaf claims the session whose current or previous token has
   * this hash. The first claim takes it in one synchronous step (any later
   * one is told where it goes); a handler still running for it here is
   * waited for (at most {@link HANDLER_WAIT_MS}), so `handled` and `data`
   * move with what it did. This leaf then remembers where the session went,
   * so a resume with the previous token that still comes here can follow it.
   */
  async handOver(tokenHash: string, owner: string | null, to: number): Promise<ClaimAnswer> {
    const store = this.#desk.store
    const found = store?.row(tokenHash)
    if (store === undefined || found === undefined) {
      const moved = this.#movedTo(tokenHash)
      return moved === undefined || moved === to ? { kind: 'unknown' } : { kind: 'moved', leaf: moved }
    }
    if (found.owner !== null && found.owner !== owner) return { kind: 'notYours', id: found.id }
    const going = this.#going.get(found.id)
    if (going !== undefined) return going.to === to ? { kind: 'unknown' } : { kind: 'moved', leaf: going.to }
    const gone = within(this.#desk.release(found.id), HANDLER_WAIT_MS)
    this.#going.set(found.id, { to, gone })
    let session: SessionRow | undefined
    try {
      await gone
      session = store.row(tokenHash)
    } finally {
      this.#going.delete(found.id)
    }
    // Ended meanwhile (its age, an RPC close): nothing is left to hand over.
    if (session?.id !== found.id) return { kind: 'unknown' }
    this.#desk.remove(session.id)
    const until = session.createdAt + store.maxAge
    const sql = this.#moves()
    sql.exec('DELETE FROM dws_shard_moved WHERE until <= ?', Date.now())
    for (const hash of [session.token, session.previous])
      if (hash !== null)
        sql.exec(
          'INSERT OR REPLACE INTO dws_shard_moved (hash, leaf, until) VALUES (?, ?, ?)',
          hash,
          to,
          until,
        )
    return { kind: 'handed', session }
  }

  /** A session handed over: stored here, suspended until its resume, which follows at once. */
  async #adopt(session: SessionRow): Promise<void> {
    const store = this.#desk.store
    if (store === undefined) return
    const now = Date.now()
    store.adopt(session, now)
    this.#desk.sends.sessionsExist()
    const ends = Math.min((session.suspendedAt ?? now) + store.window, session.createdAt + store.maxAge)
    await alarmNoLaterThan(this.#ctx.storage, ends)
  }

  /**
   * Tells the root the session lives here now (shard/sessionRoutes.ts), and
   * logs what this leaf was spared of it: rows for its id or its tags that
   * went to other leaves. First this leaf applies everything up to the
   * root's head at the move, so a live send cannot repeat a number its
   * client has, and the rows are logged before any later batch: every row
   * for the session is then here once, in the root's order, for the replay.
   * False when the root's log no longer has what the client missed.
   */
  async #routeHere(session: SessionRow, after: number): Promise<boolean> {
    const store = this.#desk.store
    if (store === undefined) return true
    const tags = JSON.parse(session.tags) as string[]
    // The leaf's own report of the tags; the root widens its view at once, without waiting for it.
    this.#leaf.holds(tags)
    const root = shardStub(this.#env, this.#binding, this.#room)
    const answer = await root.shardMoved({
      id: session.id,
      leaf: this.#leaf.index,
      after,
      tags,
      until: session.createdAt + store.maxAge,
    })
    if (answer.kind === 'trimmed') return false
    let complete = true
    await this.#leaf.catchUpTo(answer.head, () => {
      const applied = this.#leaf.applied
      const now = Date.now()
      for (const row of answer.messages)
        if (row.seq <= applied) this.#desk.log?.insertOlder(row, now)
        else complete = false
    })
    return complete
  }

  /** The leaf a session with this token hash was handed to, while it may still be alive. */
  #movedTo(tokenHash: string): number | undefined {
    return this.#moves()
      .exec<{ leaf: number }>(
        'SELECT leaf FROM dws_shard_moved WHERE hash = ? AND until > ?',
        tokenHash,
        Date.now(),
      )
      .toArray()[0]?.leaf
  }

  /** The session came back here: what this leaf remembered of its going is void. */
  #forgetMove(token: string, previous: string | null): void {
    this.#moves().exec('DELETE FROM dws_shard_moved WHERE hash IN (?, ?)', token, previous ?? token)
  }

  /**
   * Made on first use: only a leaf that sees a resume for a session it does
   * not hold needs it. Asked every time, not cached: `deleteAll` may drop it.
   */
  #moves(): SqlStorage {
    const sql = this.#ctx.storage.sql
    sql.exec(
      'CREATE TABLE IF NOT EXISTS dws_shard_moved (hash TEXT PRIMARY KEY, leaf INTEGER NOT NULL, until INTEGER NOT NULL)',
    )
    return sql
  }
}

/** Settles when `work` does, or after `ms`; the timer goes with it, so it keeps no object awake. */
async function within(work: Promise<void>, ms: number): Promise<void> {
  let stop = (): void => undefined
  const timeout = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    stop = () => {
      clearTimeout(timer)
    }
  })
  try {
    await Promise.race([work, timeout])
  } finally {
    stop()
  }
}
