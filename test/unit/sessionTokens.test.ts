import { describe, expect, it } from 'vitest'
import { hashToken, newToken } from '../../src/object/session/tokens.js'

describe('session tokens', () => {
  it('are 43 characters of base64url, which the resume entry and the 22-to-128 rule accept', () => {
    for (let i = 0; i < 100; i++) expect(newToken()).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('draw on the whole alphabet and do not repeat', () => {
    const tokens = Array.from({ length: 2_000 }, () => newToken())
    expect(new Set(tokens).size).toBe(tokens.length)
    expect(new Set(tokens.join('')).size).toBe(64)
  })

  it('are stored as the hex SHA-256 of their text', async () => {
    // FIPS 180-2's example for "abc".
    expect(await hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    expect(await hashToken(newToken())).toMatch(/^[0-9a-f]{64}$/)
  })
})
