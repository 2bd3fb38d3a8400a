/**
 * The per-connection rate limit the abuse section asks the package server
 * for, passed as the wrangler var BENCH_RATE_LIMIT (`<messages>/<seconds>`).
 * Shared by the runner, which sets it, and the server, which reads it.
 */
export interface RateLimit {
  messages: number
  perSeconds: number
}

export const RATE_LIMIT_VAR = 'BENCH_RATE_LIMIT'

export function formatRateLimit(limit: RateLimit): string {
  return `${String(limit.messages)}/${String(limit.perSeconds)}`
}

/** Undefined for an absent or malformed value: the server then runs without a limit. */
export function parseRateLimit(text: string | undefined): RateLimit | undefined {
  const match = /^(\d+)\/(\d+)$/.exec(text ?? '')
  if (match === null) return undefined
  const limit = { messages: Number(match[1]), perSeconds: Number(match[2]) }
  return limit.messages > 0 && limit.perSeconds > 0 ? limit : undefined
}
