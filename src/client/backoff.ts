/**
 * Exponential backoff with full jitter: a delay drawn uniformly from
 * [0, min(maxDelay, initialDelay * 2^step)]. Spreading retries over the whole
 * window keeps clients that lost the same server from coming back in one
 * wave (see "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
 */
export function backoffDelay(
  step: number,
  initialDelay: number,
  maxDelay: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxDelay, initialDelay * 2 ** step)
  return Math.round(random() * ceiling)
}
