/**
 * What all three bench servers do, in one place so they cannot drift apart:
 * a text message is JSON; `{ "broadcast": n }` makes the object send
 * `{ "seq": i }` for i = 0..n-1 to every socket (the sender included), with
 * `"pad": "xxx…"` in each copy when the trigger asks for `"pad": bytes`; any
 * other message is answered with `{ "received": message }`.
 */

/** A bound on one trigger, so a typo in a client cannot make an object loop for minutes. */
const MAX_BROADCASTS = 1_000
/** A bound on the padding of one copy, for the same reason. */
const MAX_PAD_BYTES = 65_536

export function broadcastCount(message: unknown): number | undefined {
  if (typeof message !== 'object' || message === null) return undefined
  const n = (message as { broadcast?: unknown }).broadcast
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= MAX_BROADCASTS ? n : undefined
}

/**
 * The padding every copy of a trigger carries, built once per trigger: the
 * abuse section's stalled reader needs copies that weigh something.
 */
export function broadcastPadding(message: unknown): string | undefined {
  const bytes = (message as { pad?: unknown }).pad
  return typeof bytes === 'number' && Number.isInteger(bytes) && bytes > 0 && bytes <= MAX_PAD_BYTES
    ? 'x'.repeat(bytes)
    : undefined
}

export interface BroadcastMessage {
  seq: number
  pad?: string
}

/** One copy of a broadcast, padded when the trigger asked for it. */
export function broadcastCopy(seq: number, pad: string | undefined): BroadcastMessage {
  return pad === undefined ? { seq } : { seq, pad }
}

export interface Echo {
  received: unknown
}

/** The per-connection data every server keeps in the socket's attachment. */
export interface ConnectionData {
  joined: number
}

/**
 * Bench instrumentation, the same in all three: the Durable Object
 * constructors count themselves here. A module-scope value lives as long as
 * the isolate, which outlives a hibernated object, so `GET /health` (answered
 * by the Worker, without touching any object) tells the runner whether a
 * wake really constructed the object again.
 */
export const instances = { constructed: 0 }

export const HEALTH_PATH = '/health'

/** `extra`: what a server adds about its own configuration (the package server: its rate limit). */
export function health(extra: Readonly<Record<string, unknown>> = {}): Response {
  return Response.json({ ...extra, ...instances })
}
