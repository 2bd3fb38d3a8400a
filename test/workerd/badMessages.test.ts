import { env } from 'cloudflare:workers'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { shapedStrict } from './fixture/endpoints/shaped.js'
import type { FixtureObject } from './fixture/record.js'
import { connect, leave, type Client } from './client.js'
import { closesOf } from './closesOf.js'

/** What /shaped's malformed_message handler answers. */
interface Malformed {
  malformed: string
  name: string
  code: string | null
  cause: string | null
}

afterEach(() => {
  vi.restoreAllMocks()
})

/** Joins a room of /shaped-strict; its ids are its own, so the first connection is 1. */
async function joinStrict(room: string): Promise<Client> {
  return connect(`/shaped-strict/${room}`)
}

function warnings(spy: { mock: { calls: unknown[][] } }): string[] {
  return spy.mock.calls.map(([line]) => String(line))
}

describe('text that is not JSON, on a JSON endpoint', () => {
  it('goes to malformed_message with the raw text and the SyntaxError, and the connection stays open', async () => {
    const client = await connect('/shaped')
    for (const text of ['{not json', 'undefined', "{'single':'quotes'}", '{"a":1}{"b":2}']) {
      client.send(text)
      expect(await client.nextJson<Malformed>()).toEqual({
        malformed: text,
        name: 'SyntaxError',
        code: null,
        cause: null,
      })
    }
    expect(await client.askJson({ say: 'still here' })).toEqual({ said: 'still here' })
    await leave(client)
  })

  it('closes the connection with 1007 "Malformed message" without a malformed_message handler, logging its id and room but not the text', async () => {
    const warned = vi.spyOn(console, 'warn')
    const bystander = await joinStrict('not-json')
    const client = await joinStrict('not-json')
    client.send('{"say": SECRET-TEXT')
    expect(await client.whenClosed()).toEqual({ code: 1007, reason: 'Malformed message', wasClean: true })
    expect(await closesOf(shapedStrict.room<FixtureObject>(env, 'not-json'), 2)).toEqual([
      { event: 'close', id: 2, code: 1007, reason: 'Malformed message' },
    ])
    expect(warnings(warned)).toContain(
      '[durable-websocket] connection 2 in room not-json sent a message the serializer cannot decode, closing it with 1007',
    )
    expect(warned.mock.calls.flat().map(String).join('\n')).not.toContain('SECRET-TEXT')
    expect(await bystander.askJson({ say: 'unaffected' })).toEqual({ said: 'unaffected' })
    await leave(bystander)
  })
})

describe('JSON of the wrong shape, with validate', () => {
  it('goes to malformed_message with ERR_DWS_INVALID_MESSAGE, never to message, and the connection stays open', async () => {
    const client = await connect('/shaped')
    for (const value of [{}, { say: 1 }, { said: 'close' }, [1, 2], 'say', 42, true]) {
      const text = JSON.stringify(value)
      client.send(text)
      expect(await client.nextJson<Malformed>()).toEqual({
        malformed: text,
        name: 'InvalidMessageError',
        code: 'ERR_DWS_INVALID_MESSAGE',
        cause: null,
      })
    }
    expect(await client.askJson({ say: 'well formed' })).toEqual({ said: 'well formed' })
    await leave(client)
  })

  it('goes to malformed_message with ERR_DWS_INVALID_MESSAGE and the cause when the validator throws on it', async () => {
    const client = await connect('/shaped')
    // The fixture's validator reads message.say without a null check, as users write them.
    client.send('null')
    expect(await client.nextJson<Malformed>()).toEqual({
      malformed: 'null',
      name: 'InvalidMessageError',
      code: 'ERR_DWS_INVALID_MESSAGE',
      cause: 'TypeError',
    })
    expect(await client.askJson({ say: 'after null' })).toEqual({ said: 'after null' })
    await leave(client)
  })

  it('closes the connection with 1007 without a malformed_message handler, logging that it failed validate, and the others carry on', async () => {
    const warned = vi.spyOn(console, 'warn')
    const bystander = await joinStrict('wrong-shape')
    for (const [id, text] of [
      [2, '{"say":1}'],
      [3, 'null'],
    ] as const) {
      const client = await joinStrict('wrong-shape')
      client.send(text)
      expect(await client.whenClosed()).toEqual({ code: 1007, reason: 'Malformed message', wasClean: true })
      expect(await closesOf(shapedStrict.room<FixtureObject>(env, 'wrong-shape'), id)).toHaveLength(1)
      expect(warnings(warned)).toContain(
        `[durable-websocket] connection ${String(id)} in room wrong-shape sent a message that failed validate, closing it with 1007`,
      )
    }
    expect(await bystander.askJson({ say: 'unaffected' })).toEqual({ said: 'unaffected' })
    await leave(bystander)
  })
})

describe('an empty message', () => {
  it('is malformed on a JSON endpoint: malformed_message gets the empty text and a SyntaxError', async () => {
    const client = await connect('/shaped')
    client.send('')
    expect(await client.nextJson<Malformed>()).toEqual({
      malformed: '',
      name: 'SyntaxError',
      code: null,
      cause: null,
    })
    await leave(client)
  })

  it('reaches message as the empty string without a serializer', async () => {
    const client = await connect('/gate')
    await client.nextText()
    expect(await client.ask('')).toBe('text []')
    await leave(client)
  })

  it('as an empty binary frame reaches message as an ArrayBuffer of 0 bytes, with or without a serializer', async () => {
    const json = await connect('/shaped')
    json.send(new Uint8Array(0))
    expect(await json.nextJson()).toEqual({ isArrayBuffer: true, bytes: 0 })
    const raw = await connect('/gate')
    await raw.nextText()
    raw.send(new ArrayBuffer(0))
    expect(await raw.nextText()).toBe('binary 0')
    await leave(json, raw)
  })
})

describe('a binary frame, on a JSON endpoint with validate', () => {
  it('reaches message as an ArrayBuffer, neither decoded nor validated', async () => {
    const client = await connect('/shaped')
    // Bytes of valid JSON of the right shape, and bytes the validator would refuse: both arrive as bytes.
    for (const bytes of [new TextEncoder().encode('{"say":"hi"}'), new Uint8Array([0, 255, 1])]) {
      client.send(bytes)
      expect(await client.nextJson()).toEqual({ isArrayBuffer: true, bytes: bytes.byteLength })
    }
    await leave(client)
  })
})
