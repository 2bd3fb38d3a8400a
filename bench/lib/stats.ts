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
