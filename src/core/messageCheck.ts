import { InvalidMessageError } from './errors.js'
import type { StandardSchemaResult, StandardSchemaV1 } from '../shared/standardSchema.js'

/** What passed a check: `value` is what the handler gets, which a schema may have transformed. */
export interface Checked {
  readonly value: unknown
}

/**
 * Checks one decoded message. It returns at once unless the schema is async,
 * and throws (or rejects with) an {@link InvalidMessageError} for a message it refuses.
 */
export type MessageCheck = (message: unknown) => Checked | Promise<Checked>

/** A type guard, a plain boolean check, or a Standard Schema, as `validate` and `add` take them. */
export type CheckOption = ((message: unknown) => boolean) | StandardSchemaV1

/** Made once per option, so a message pays for one call and no look-ups. */
export function toMessageCheck(option: CheckOption): MessageCheck {
  return typeof option === 'function' && !('~standard' in option)
    ? guardCheck(option)
    : schemaCheck(option as StandardSchemaV1)
}

/** Runs the module's check, then the handler's own on what the first returned. */
export function runChecks(
  message: unknown,
  first: MessageCheck | undefined,
  second: MessageCheck | undefined,
): Checked | Promise<Checked> {
  const checked = first === undefined ? { value: message } : first(message)
  if (second === undefined) return checked
  return checked instanceof Promise ? checked.then(({ value }) => second(value)) : second(checked.value)
}

function guardCheck(guard: (message: unknown) => boolean): MessageCheck {
  return (message) => {
    let valid: boolean
    try {
      valid = guard(message)
    } catch (cause) {
      // A guard that reads `message.type` throws on `null`: still a message of the wrong shape.
      throw new InvalidMessageError('The validator threw on the message.', [], { cause })
    }
    if (!valid) {
      throw new InvalidMessageError('The message does not have the expected shape.', [
        { message: 'The message does not have the expected shape.' },
      ])
    }
    return { value: message }
  }
}

function schemaCheck(schema: StandardSchemaV1): MessageCheck {
  const props = schema['~standard']
  return (message) => {
    let result: StandardSchemaResult<unknown> | Promise<StandardSchemaResult<unknown>>
    try {
      result = props.validate(message)
    } catch (cause) {
      throw schemaThrew(props.vendor, cause)
    }
    return result instanceof Promise
      ? result.then(settle, (cause: unknown) => {
          throw schemaThrew(props.vendor, cause)
        })
      : settle(result)
  }
}

function settle(result: StandardSchemaResult<unknown>): Checked {
  if (result.issues !== undefined) {
    throw new InvalidMessageError('The message does not match the schema.', result.issues)
  }
  return result
}

function schemaThrew(vendor: string, cause: unknown): InvalidMessageError {
  return new InvalidMessageError(`The ${vendor} schema threw on the message.`, [], { cause })
}
