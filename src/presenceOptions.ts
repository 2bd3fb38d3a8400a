import type { Locals } from './core/events.js'
import { describe } from './shared/describe.js'
import { invalid, optionalFunction, positiveInteger } from './optionChecks.js'

/** Names the member an upgrade belongs to, e.g. the user id a middleware put in `locals`. */
export type PresenceKeyFunction<L = Locals> = (request: Request, locals: L) => string

/** A new member's metadata, from its first upgrade: a plain JSON object. */
export type PresenceMetaFunction<L = Locals> = (request: Request, locals: L) => Record<string, unknown>

export interface PresenceOptions<L = Locals> {
  /** The member key of an upgrade, 1 to 256 characters: every connection with one key is one member. */
  key: PresenceKeyFunction<L>
  /** A new member's metadata. Default: `{}`. */
  meta?: PresenceMetaFunction<L>
  /** Members one room takes; past it, a new member's upgrade is refused. Default: 10000. */
  maxMembers?: number
  /** The largest metadata of one member, as JSON in UTF-8 bytes. Default: 1024. */
  maxMetaBytes?: number
}

/** Presence options with the defaults filled in. */
export interface ResolvedPresence<L = Locals> {
  readonly key: PresenceKeyFunction<L>
  readonly meta: PresenceMetaFunction<L> | undefined
  readonly maxMembers: number
  readonly maxMetaBytes: number
}

export const DEFAULT_PRESENCE = { maxMembers: 10_000, maxMetaBytes: 1_024 } as const

/** The `presence` option checked, defaults filled in; undefined when off. */
export function resolvePresence<L>(value: unknown): ResolvedPresence<L> | undefined {
  if (value === undefined) return undefined
  const presence = value as Partial<PresenceOptions<L>> | null
  if (typeof presence !== 'object' || presence === null || typeof presence.key !== 'function') {
    throw invalid(
      `options.presence must be { key: (request, locals) => string, meta?, maxMembers?, maxMetaBytes? }, got ${describe(value)}.`,
    )
  }
  optionalFunction('presence.meta', presence.meta, '(request, locals) => object')
  return {
    key: presence.key,
    meta: presence.meta,
    maxMembers: positiveInteger('presence.maxMembers', presence.maxMembers) ?? DEFAULT_PRESENCE.maxMembers,
    maxMetaBytes:
      positiveInteger('presence.maxMetaBytes', presence.maxMetaBytes) ?? DEFAULT_PRESENCE.maxMetaBytes,
  }
}
