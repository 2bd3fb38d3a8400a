/** The q-quantile (0..1) of `values`, linearly interpolated; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const position = (sorted.length - 1) * q
  const below = Math.floor(position)
  const above = Math.ceil(position)
  const low = sorted[below] ?? NaN
  const high = sorted[above] ?? NaN
  return low + (high - low) * (position - below)
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5)
}

/** A median with the interquartile range around it: where the middle half of the values lie. */
export interface Spread {
  median: number
  q1: number
  q3: number
  count: number
}

export function spread(values: readonly number[]): Spread {
  return {
    median: median(values),
    q1: quantile(values, 0.25),
    q3: quantile(values, 0.75),
    count: values.length,
  }
}
