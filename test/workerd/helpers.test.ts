import { describe, expect, it } from 'vitest'
import { toFrame } from '../../src/core/outgoing.js'
import { validateClose } from '../../src/object/connection.js'
import { resolveSerializer } from '../../src/options.js'
import { isSendableCloseCode } from '../../src/shared/closeCodes.js'
import { json, type Serializer } from '../../src/shared/serializer.js'
import { defaultUpgradeError, findUpgradeProblem } from '../../src/mount/upgrade.js'
import { resolveModule } from '../../src/object/registry.js'
import { DurableWebSocketError, isDurableWebSocketError } from '../../src/index.js'
import { lifecycle } from './fixture/endpoints/lifecycle.js'
// The whole fixture: a script that makes many modules.
import './fixture/worker.js'

function thrownBy(action: () => unknown): DurableWebSocketError {
  try {
    action()
  } catch (error) {
    return error as DurableWebSocketError
  }
  throw new Error('expected the call to throw')
}

describe('isSendableCloseCode(code)', () => {
  it.each([1000, 1001, 1002, 1003, 1007, 1008, 1011, 1014, 3000, 4000, 4999])('accepts %i', (code) => {
    expect(isSendableCloseCode(code)).toBe(true)
  })

  it.each([999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 1000.5, Number.NaN])('refuses %d', (code) => {
    expect(isSendableCloseCode(code)).toBe(false)
  })
})

describe('validateClose(code, reason)', () => {
  it('accepts a sendable code with a reason of up to 123 UTF-8 bytes', () => {
    expect(() => {
      validateClose(1000, '')
    }).not.toThrow()
    expect(() => {
      validateClose(4000, '€'.repeat(41))
    }).not.toThrow()
  })

  it('throws ERR_DWS_INVALID_CLOSE for a code that may not be sent, naming the code', () => {
    const error = thrownBy(() => {
      validateClose(1005, '')
    })
    expect(error.code).toBe('ERR_DWS_INVALID_CLOSE')
    expect(error.message).toContain('1005')
  })

  it('throws ERR_DWS_INVALID_CLOSE for a reason over 123 bytes, or one that is not a string', () => {
    expect(thrownBy(() => validateClose(1000, `${'€'.repeat(41)}!`)).message).toContain('124')
    expect(thrownBy(() => validateClose(1000, 42)).code).toBe('ERR_DWS_INVALID_CLOSE')
  })
})

describe('toFrame(value, serializer)', () => {
  it('passes an ArrayBuffer or a view through as the same object, with or without a serializer', () => {
    const buffer = new ArrayBuffer(4)
    const view = new Uint8Array(buffer, 1, 2)
    const data = new DataView(buffer)
    for (const serializer of [undefined, json]) {
      expect(toFrame(buffer, serializer)).toBe(buffer)
      expect(toFrame(view, serializer)).toBe(view)
      expect(toFrame(data, serializer)).toBe(data)
    }
  })

  it('turns strings, numbers, booleans and bigints into text without a serializer', () => {
    expect(toFrame('text', undefined)).toBe('text')
    expect(toFrame(-1.5, undefined)).toBe('-1.5')
    expect(toFrame(true, undefined)).toBe('true')
    expect(toFrame(10n ** 20n, undefined)).toBe('100000000000000000000')
  })

  it.each<[string, unknown]>([
    ['an object', { a: 1 }],
    ['an array', [1]],
    ['null', null],
    ['undefined', undefined],
    ['a function', () => undefined],
    ['a symbol', Symbol('s')],
  ])('refuses %s without a serializer with ERR_DWS_UNSENDABLE_MESSAGE', (label, value) => {
    const error = thrownBy(() => toFrame(value, undefined))
    expect(error.code).toBe('ERR_DWS_UNSENDABLE_MESSAGE')
    expect(error.message).toContain(`Cannot send ${label}`)
  })

  it("encodes everything else with the serializer, and wraps the serializer's failure", () => {
    expect(toFrame({ a: [1] }, json)).toBe('{"a":[1]}')
    expect(toFrame('text', json)).toBe('"text"')
    const error = thrownBy(() => toFrame(undefined, json))
    expect(error.code).toBe('ERR_DWS_UNSENDABLE_MESSAGE')
    expect(error.cause).toBeInstanceOf(TypeError)
  })
})

describe('resolveSerializer(option)', () => {
  it("gives none for undefined, the built-in json for 'json', and a custom one as it is", () => {
    const custom: Serializer = { encode: String, decode: (text) => text }
    expect(resolveSerializer(undefined)).toBeUndefined()
    expect(resolveSerializer('json')).toBe(json)
    expect(resolveSerializer(custom)).toBe(custom)
  })

  it.each<[string, unknown]>([
    ['another name', 'msgpack'],
    ['an object without decode', { encode: String }],
    ['an object whose encode is no function', { encode: 'x', decode: String }],
    ['null', null],
  ])('refuses %s with ERR_DWS_INVALID_OPTIONS', (_label, option) => {
    expect(thrownBy(() => resolveSerializer(option)).code).toBe('ERR_DWS_INVALID_OPTIONS')
  })
})

describe('findUpgradeProblem(request)', () => {
  const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='

  function handshake(headers: Record<string, string>, method = 'GET'): Request {
    // A Request built here keeps its method; a fetch with Upgrade: websocket would be sent as GET.
    return new Request('http://x/ws', { method, headers })
  }

  it('finds nothing wrong with a complete version 13 handshake, or one that leaves version and key out', () => {
    const complete = { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': KEY }
    expect(findUpgradeProblem(handshake(complete))).toBeUndefined()
    expect(findUpgradeProblem(handshake({ Upgrade: 'WebSocket' }))).toBeUndefined()
  })

  it("reports 'method' for anything but GET, even with an Upgrade header", () => {
    for (const method of ['POST', 'PUT', 'HEAD', 'OPTIONS']) {
      expect(findUpgradeProblem(handshake({ Upgrade: 'websocket' }, method))).toBe('method')
    }
  })

  it("reports 'not-websocket' without an Upgrade: websocket header", () => {
    expect(findUpgradeProblem(handshake({}))).toBe('not-websocket')
    expect(findUpgradeProblem(handshake({ Upgrade: 'h2c' }))).toBe('not-websocket')
    // workerd hands a socket back only when Upgrade is exactly "websocket" (handshake.test.ts).
    expect(findUpgradeProblem(handshake({ Upgrade: 'h2c, websocket' }))).toBe('not-websocket')
  })

  it("reports 'version' for a version other than 13", () => {
    expect(findUpgradeProblem(handshake({ Upgrade: 'websocket', 'Sec-WebSocket-Version': '8' }))).toBe(
      'version',
    )
  })

  it("reports 'key' for a key that is not 16 bytes of base64", () => {
    for (const key of ['short==', `${KEY}x`, 'dGhlIHNhbXBsZSBub25jZQ', '!GhlIHNhbXBsZSBub25jZQ==']) {
      expect(findUpgradeProblem(handshake({ Upgrade: 'websocket', 'Sec-WebSocket-Key': key }))).toBe('key')
    }
  })
})

describe('defaultUpgradeError(problem)', () => {
  it('answers 405, 426, 426 and 400 with the headers that say what to do', () => {
    expect(defaultUpgradeError('method').status).toBe(405)
    expect(defaultUpgradeError('method').headers.get('Allow')).toBe('GET')
    expect(defaultUpgradeError('not-websocket').status).toBe(426)
    expect(defaultUpgradeError('not-websocket').headers.get('Upgrade')).toBe('websocket')
    expect(defaultUpgradeError('version').status).toBe(426)
    expect(defaultUpgradeError('version').headers.get('Sec-WebSocket-Version')).toBe('13')
    expect(defaultUpgradeError('key').status).toBe(400)
  })
})

describe('resolveModule(objectClass)', () => {
  it('returns the module a class names with static websocket', () => {
    expect(resolveModule({ name: 'Named', websocket: lifecycle }).module).toBe(lifecycle)
  })

  it('throws ERR_DWS_NO_MODULE, naming the class, when the script made several modules and the class names none', () => {
    const error = thrownBy(() => resolveModule({ name: 'StrayObject' }))
    expect(error).toBeInstanceOf(DurableWebSocketError)
    expect(error.code).toBe('ERR_DWS_NO_MODULE')
    expect(error.message).toContain('StrayObject')
    expect(error.message).toContain('static websocket')
  })
})

describe('isDurableWebSocketError(error)', () => {
  it('recognises the package errors by their code, also as plain objects that crossed a boundary', () => {
    expect(isDurableWebSocketError(new DurableWebSocketError('ERR_DWS_NO_MODULE', 'x'))).toBe(true)
    expect(isDurableWebSocketError({ code: 'ERR_DWS_NO_MODULE', message: 'x' })).toBe(true)
    expect(isDurableWebSocketError(new Error('x'))).toBe(false)
    expect(isDurableWebSocketError({ code: 'ENOENT' })).toBe(false)
    expect(isDurableWebSocketError(null)).toBe(false)
  })
})
