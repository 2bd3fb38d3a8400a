import { describe, expect, it } from 'vitest'
import { json, serializerFrom, type Serializer } from '../../src/shared/serializer.js'

describe('json', () => {
  it('round-trips what JSON can hold', () => {
    const value = { text: 'héllo', n: 1.5, list: [true, null], nested: { deep: ['x'] } }
    const frame = json.encode(value)
    expect(typeof frame).toBe('string')
    expect(json.decode(frame as string)).toEqual(value)
  })

  it.each([
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
  ])('refuses to encode %s, which JSON turns into no text at all, naming only its kind', (_what, value) => {
    expect(() => json.encode(value)).toThrow(TypeError)
    expect(() => json.encode(value)).toThrow(/^JSON cannot encode (undefined|a function|a symbol)\.$/)
  })

  it('lets JSON.stringify throw for a cycle and a bigint', () => {
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    expect(() => json.encode(cycle)).toThrow(TypeError)
    expect(() => json.encode(1n)).toThrow(TypeError)
  })

  it('throws a SyntaxError for text that is not JSON', () => {
    expect(() => json.decode('{not json')).toThrow(SyntaxError)
  })
})

describe('serializerFrom(option)', () => {
  it("turns 'json' into the json serializer", () => {
    expect(serializerFrom('json')).toBe(json)
  })

  it('takes any object with encode() and decode() as it is', () => {
    const custom: Serializer<string> = { encode: (value) => value.toUpperCase(), decode: (text) => text }
    expect(serializerFrom(custom)).toBe(custom)
  })

  it.each([
    ['undefined', undefined],
    ['another name', 'msgpack'],
    ['null', null],
    ['an object without decode', { encode: () => '' }],
    ['an object whose encode is no function', { encode: 'x', decode: () => 1 }],
  ])('answers undefined for %s, so the caller can say what it expected', (_what, option) => {
    expect(serializerFrom(option)).toBeUndefined()
  })
})
