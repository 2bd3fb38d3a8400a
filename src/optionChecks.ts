import { DurableWebSocketError } from './core/errors.js'
import { describe } from './shared/describe.js'

/** The error every bad option throws, at once, when the module is made. */
export function invalid(message: string): DurableWebSocketError {
  return new DurableWebSocketError('ERR_DWS_INVALID_OPTIONS', message)
}

/** A whole number from 1 to `max`, or undefined when not given. */
export function positiveInteger(
  name: string,
  value: unknown,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalid(`options.${name} must be a whole number from 1 to ${String(max)}, got ${describe(value)}.`)
  }
  return value
}

/** An optional function option: undefined, or a function of the shape named. */
export function optionalFunction(name: string, value: unknown, shape: string): void {
  if (value !== undefined && typeof value !== 'function') {
    throw invalid(`options.${name} must be a function ${shape}, got ${describe(value)}.`)
  }
}
