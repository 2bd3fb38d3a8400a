import { describe, expect, it } from 'vitest'
import * as v from 'valibot'
import * as z from 'zod'
import { InvalidMessageError } from '../../src/core/errors.js'
import { runChecks, toMessageCheck, type Checked } from '../../src/core/messageCheck.js'
import { isStandardSchema, type StandardSchemaV1 } from '../../src/shared/standardSchema.js'

/** What a check threw, or rejected with. */
async function refusal(run: () => Checked | Promise<Checked>): Promise<InvalidMessageError> {
  try {
    await run()
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidMessageError)
    return error as InvalidMessageError
  }
  throw new Error('the check passed the message')
}

const upper = z.object({ text: z.string().transform((text) => text.toUpperCase()) })

describe('toMessageCheck(guard)', () => {
  it('passes the message itself when the guard says yes, at once', () => {
    const message = { text: 'hi' }
    expect(toMessageCheck((m) => typeof m === 'object')(message)).toEqual({ value: message })
  })

  it('throws an InvalidMessageError with one issue of ours when the guard says no', async () => {
    const error = await refusal(() => toMessageCheck(() => false)(1))
    expect(error.code).toBe('ERR_DWS_INVALID_MESSAGE')
    expect(error.issues).toEqual([{ message: 'The message does not have the expected shape.' }])
  })

  it('throws an InvalidMessageError with the guard’s own error as cause when the guard throws', async () => {
    const error = await refusal(() => toMessageCheck((m) => (m as { a: { b: unknown } }).a.b === 1)(null))
    expect(error.cause).toBeInstanceOf(TypeError)
    expect(error.issues).toEqual([])
  })
})

describe('toMessageCheck(schema)', () => {
  it('returns the schema’s output, at once for a sync schema', () => {
    expect(toMessageCheck(upper)({ text: 'hi', extra: 1 })).toEqual({ value: { text: 'HI' } })
    expect(toMessageCheck(v.object({ n: v.number() }))({ n: 1 })).toHaveProperty('value', { n: 1 })
  })

  it('throws an InvalidMessageError carrying the schema’s issues', async () => {
    const error = await refusal(() => toMessageCheck(upper)({ text: 1 }))
    expect(error.issues).toHaveLength(1)
    expect(error.issues[0]?.path).toEqual(['text'])
    expect(error.message).not.toContain('1')
  })

  it('returns a promise for an async schema, which rejects with the issues', async () => {
    const positive = z.number().refine(async (n) => Promise.resolve(n > 0), 'must be positive')
    const check = toMessageCheck(positive)
    const passed = check(2)
    expect(passed).toBeInstanceOf(Promise)
    expect(await passed).toEqual({ value: 2 })
    expect((await refusal(() => check(-2))).issues.map((issue) => issue.message)).toEqual([
      'must be positive',
    ])
  })

  it('turns a schema that throws, sync or async, into an InvalidMessageError with the cause', async () => {
    const thrown = new Error('boom')
    const throws: StandardSchemaV1 = {
      '~standard': {
        version: 1,
        vendor: 'hand-made',
        validate: () => {
          throw thrown
        },
      },
    }
    const rejects: StandardSchemaV1 = {
      '~standard': { version: 1, vendor: 'hand-made', validate: () => Promise.reject(thrown) },
    }
    for (const schema of [throws, rejects]) {
      const error = await refusal(() => toMessageCheck(schema)('x'))
      expect(error.cause).toBe(thrown)
      expect(error.message).toBe('The hand-made schema threw on the message.')
    }
  })

  it('takes a callable schema (as ArkType makes them) as a schema, not as a guard', () => {
    const callable = Object.assign(() => false, {
      '~standard': {
        version: 1 as const,
        vendor: 'callable',
        validate: (value: unknown) => ({ value: [value] }),
      },
    })
    expect(toMessageCheck(callable)(1)).toEqual({ value: [1] })
  })
})

describe('runChecks(message, first, second)', () => {
  it('runs the second check on what the first returned', async () => {
    const unwrap = toMessageCheck(z.object({ move: z.unknown() }).transform(({ move }) => move))
    const move = toMessageCheck(v.object({ x: v.number() }))
    expect(runChecks({ move: { x: 1 } }, unwrap, move)).toHaveProperty('value', { x: 1 })
    expect((await refusal(() => runChecks({ move: { x: 'a' } }, unwrap, move))).issues[0]?.path).toEqual([
      expect.objectContaining({ key: 'x' }),
    ])
  })

  it('waits for an async first check before the second', async () => {
    const slow = toMessageCheck(z.string().refine(async () => Promise.resolve(true)))
    const short = toMessageCheck(z.string().max(2))
    expect(await runChecks('ab', slow, short)).toEqual({ value: 'ab' })
    await refusal(() => runChecks('abc', slow, short))
  })

  it('passes the message as it is with no check at all', () => {
    expect(runChecks('x', undefined, undefined)).toEqual({ value: 'x' })
  })
})

describe('isStandardSchema(value)', () => {
  it('recognises zod and valibot schemas and nothing that merely looks close', () => {
    expect(isStandardSchema(upper)).toBe(true)
    expect(isStandardSchema(v.string())).toBe(true)
    for (const value of [
      null,
      undefined,
      {},
      () => true,
      { '~standard': {} },
      { '~standard': { version: 2, validate: () => ({}) } },
    ]) {
      expect(isStandardSchema(value)).toBe(false)
    }
  })
})
