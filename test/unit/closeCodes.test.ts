import { describe, expect, it } from 'vitest'
import {
  CloseCode,
  MAX_CLOSE_REASON_BYTES,
  closeReasonProblem,
  isSendableCloseCode,
  utf8Length,
} from '../../src/shared/closeCodes.js'

describe('isSendableCloseCode(code)', () => {
  it.each([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3901, 4000, 4999])(
    'lets an endpoint send %i',
    (code) => {
      expect(isSendableCloseCode(code)).toBe(true)
    },
  )

  it.each([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 1000.5, Number.NaN, -1000])(
    'refuses %d: reserved for reporting, unassigned or not a whole number',
    (code) => {
      expect(isSendableCloseCode(code)).toBe(false)
    },
  )

  it('accepts every code the package sends on its own', () => {
    expect(Object.values(CloseCode).filter((code) => !isSendableCloseCode(code))).toEqual([])
  })
})

describe('closeReasonProblem(reason)', () => {
  it('accepts a reason of up to 123 bytes of UTF-8, the empty one included', () => {
    expect(closeReasonProblem('')).toBeUndefined()
    expect(closeReasonProblem('x'.repeat(MAX_CLOSE_REASON_BYTES))).toBeUndefined()
  })

  it('counts bytes, not characters: 62 two-byte characters are 124 bytes, one too many', () => {
    const reason = '\u00e9'.repeat(62)
    expect(reason.length).toBe(62)
    expect(utf8Length(reason)).toBe(124)
    expect(closeReasonProblem(reason)).toBe(
      'A close reason may be at most 123 bytes of UTF-8; this one is 124. Shorten it.',
    )
    expect(closeReasonProblem('\u00e9'.repeat(61))).toBeUndefined()
  })

  it('refuses a reason that is not a string', () => {
    expect(closeReasonProblem(42)).toBe('A close reason must be a string.')
    expect(closeReasonProblem(undefined)).toBe('A close reason must be a string.')
  })
})
