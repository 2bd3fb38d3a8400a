import type { Frame } from '../../core/outgoing.js'
import type { SessionRow } from '../session/store.js'
import type { MoveAnswer, MoveNotice } from './sessionRoutes.js'

/**
 * One message for the whole room, or for some of it, as a leaf hands it to
 * the root: the same columns the session log keeps (session/log.ts), so the
 * root logs it as it came and every leaf logs the same row.
 */
export interface RoomMessage {
  /** A send to one connection; null for a broadcast or `to(tag)`. */
  readonly target: number | null
  readonly tag: string | null
  readonly except: readonly number[] | null
  readonly frame: Frame
  /** A reply's or a failure's mark (session/link.ts), '' for a message. */
  readonly mark: string
}

/** A room message with the root's number for it: its `g` on every leaf. */
export interface NumberedMessage extends RoomMessage {
  readonly seq: number
}

/**
 * What the root sends a leaf: the rows numbered from `from` through
 * `through` that are for this leaf (the rest of that stretch was for other
 * leaves' ids and tags, shard/leafRoute.ts). A leaf that applied less than
 * `from - 1` missed a batch and asks the root for the rest; one that
 * applied more drops the copies; either way it has seen through `through`.
 */
export interface Batch {
  readonly from: number
  readonly through: number
  readonly messages: readonly NumberedMessage[]
  /**
   * The leaf's tags the root filtered `to(tag)` rows with, as of which of the
   * leaf's reports ({@link TagReport}); absent or null when every tag's rows
   * are in (a catch-up, or a root that has not heard the leaf's tags yet).
   */
  readonly tags?: TagsSeen | null
  /** How many leaves the root delivers to (shard/span.ts): a leaf's room-wide calls ask that many. */
  readonly span?: number
  /**
   * The root added this leaf to the room when its log was already here: a
   * leaf that applied less takes this as applied, with nothing to deliver
   * before it (it held nobody then), instead of copying the whole log.
   */
  readonly start?: number
}

/** Which of a leaf's tag sets: `epoch` names the leaf's storage (a wiped one starts again), `version` counts its gains. */
export interface TagsSeen {
  readonly epoch: string
  readonly version: number
}

/**
 * What a leaf tells the root about the tags its sockets and sessions hold:
 * the tags gained after version `since`, or, with `since` 0, all of them.
 */
export interface TagReport extends TagsSeen {
  readonly leaf: number
  readonly since: number
  readonly tags: readonly string[]
}

/**
 * What a leaf sends the root: messages from its outbox (shard/outbox.ts) in
 * the order its handlers sent them, the first numbered `first` and the rest
 * one after another. The numbers are durable, so a resend (a lost answer, a
 * restarted leaf) is taken once; `epoch` names the leaf's storage, whose
 * numbering starts again at 1 if it is wiped.
 */
export interface Publication {
  readonly leaf: number
  readonly epoch: string
  readonly first: number
  readonly messages: readonly RoomMessage[]
}

/** Where a room's messages go to be numbered: the root itself, or a leaf that hands them to it. */
export interface RoomOrder {
  publish(message: RoomMessage): unknown
}

/** The RPC methods the root and the leaves call on each other (WebSocketObject's `shard*`), as a stub sees them. */
export interface ShardStub {
  shardPublish(publication: Publication): Promise<number>
  /** On the root: the rows after `after`; `leaf` asks as that leaf, which never gets rows before its start. */
  shardSince(after: number, leaf?: number): Promise<Batch>
  shardApply(batch: Batch): Promise<number>
  shardTags(report: TagReport): Promise<number>
  shardHasRoom(): Promise<boolean>
  /** On a leaf: its own open connections (roomWide.ts adds them up). */
  shardCount(): Promise<number>
  shardIds(): Promise<number[]>
  /** On a leaf: whether it holds `id`, open or as a suspended session. */
  shardHolds(id: number): Promise<boolean>
  /** On a leaf: closes `id` if it holds it, and passes the close on to no one. */
  shardCloseHere(id: number, code?: number, reason?: string): Promise<boolean>
  shardClaim(tokenHash: string, owner: string | null, to: number): Promise<ClaimAnswer>
  /** On the root: a leaf adopted a claimed session (shard/sessionRoutes.ts). */
  shardMoved(notice: MoveNotice): Promise<MoveAnswer>
  /** On the root: the leaf that holds `id` by its routes (where it moved, else the leaf of the id). */
  shardRouteOf(id: number): Promise<number | undefined>
}

/**
 * What a leaf answers when another claims a session by its token's hash
 * (shard/claims.ts): the session, handed over and forgotten here; the leaf
 * it moved to before; a refusal because the claim comes for another owner;
 * or nothing, because no session here has that token.
 */
export type ClaimAnswer =
  | { readonly kind: 'handed'; readonly session: SessionRow }
  | { readonly kind: 'moved'; readonly leaf: number }
  | { readonly kind: 'notYours'; readonly id: number }
  | { readonly kind: 'unknown' }
