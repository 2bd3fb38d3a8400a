/**
 * Names the kind of a value for an error message without quoting it: the
 * value may hold what a client sent, or a secret, and messages get logged.
 */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (Array.isArray(value)) return 'an array'
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`
  // An object made by Object.create(null) has no constructor, whatever its type says.
  if (typeof value === 'object') {
    return `an object (${(value as { constructor?: { name: string } }).constructor?.name ?? 'no prototype'})`
  }
  return `a ${typeof value}`
}
