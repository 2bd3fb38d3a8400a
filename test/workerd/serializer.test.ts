import { describe, expect, it } from 'vitest'
import { connect, join, leave } from './client.js'

const encoder = new TextEncoder()

describe("serializer: 'json'", () => {
  it('decodes each text frame before message sees it', async () => {
    const client = await connect('/json')
    expect(await client.askJson({ list: [1, 'two'], nested: { ok: true } })).toEqual({
      received: { list: [1, 'two'], nested: { ok: true } },
      kind: 'object',
    })
    expect(await client.askJson([1, 2])).toEqual({ received: [1, 2], kind: 'array' })
    expect(await client.askJson('a string')).toEqual({ received: 'a string', kind: 'string' })
    expect(await client.askJson(12.5)).toEqual({ received: 12.5, kind: 'number' })
    expect(await client.askJson(null)).toEqual({ received: null, kind: 'object' })
    await leave(client)
  })

  it('encodes everything it sends as JSON text, strings and numbers included', async () => {
    const client = await connect('/json')
    expect(await client.ask(JSON.stringify({ send: 'text' }))).toBe('"plain text"')
    expect(await client.ask(JSON.stringify({ send: 'number' }))).toBe('42')
    expect(await client.ask(JSON.stringify({ send: 'null' }))).toBe('null')
    expect(await client.ask(JSON.stringify({ send: 'object' }))).toBe('{"nested":{"list":[1,2,3]}}')
    await leave(client)
  })

  it('sends an ArrayBuffer, and only the bytes of a view, as a binary frame, untouched', async () => {
    const client = await connect('/json')
    client.sendJson({ send: 'buffer' })
    expect(await client.nextBytes()).toEqual([1, 2, 3])
    client.sendJson({ send: 'view' })
    expect(await client.nextBytes()).toEqual([8, 7, 6])
    await leave(client)
  })

  it('hands a binary frame to message as an ArrayBuffer, undecoded, even when it holds JSON text', async () => {
    const client = await connect('/json')
    for (const bytes of [new Uint8Array([0, 255, 128, 10]), encoder.encode('{"looks":"like json"}')]) {
      client.send(bytes)
      expect(await client.nextJson()).toEqual({ binary: true, isArrayBuffer: true, bytes: [...bytes] })
      expect(await client.nextBytes()).toEqual([...bytes])
    }
    await leave(client)
  })
})

describe('serializer: { encode, decode }', () => {
  it('decodes text with its decode and encodes what is sent with its encode', async () => {
    const client = await connect('/custom')
    expect(await client.ask('<{"x":1}>')).toBe('<{"received":{"x":1}}>')
    expect(await client.ask('<"hi">')).toBe('<{"received":"hi"}>')
    await leave(client)
  })
})

describe('malformed_message(conn, raw, error)', () => {
  it('receives the raw text and the decode error, and the connection stays open', async () => {
    const client = await connect('/json')
    expect(await client.ask('{not json')).toBe(
      JSON.stringify({ malformed: '{not json', error: 'SyntaxError' }),
    )
    expect(await client.askJson({ still: 'here' })).toEqual({ received: { still: 'here' }, kind: 'object' })
    await leave(client)
  })

  it('is optional: without it, a connection whose text cannot be decoded is closed with 1007 and the others carry on', async () => {
    const bad = await connect('/custom')
    const good = await connect('/custom')
    bad.send('not in brackets')
    expect(await bad.whenClosed()).toMatchObject({ code: 1007 })
    expect(await good.ask('<1>')).toBe('<{"received":1}>')
    const later = await connect('/custom')
    expect(await later.ask('<2>')).toBe('<{"received":2}>')
    await leave(good, later)
  })
})

describe('without a serializer', () => {
  it('hands text frames to message as strings', async () => {
    const { client } = await join('/raw')
    expect(await client.ask('{"not":"decoded"}')).toBe('string:{"not":"decoded"}')
    await leave(client)
  })

  it.each([
    ['a string', 'string', 'some text'],
    ['a number', 'number', '42.5'],
    ['a boolean', 'boolean', 'false'],
    ['a bigint', 'bigint', '12345678901234567890'],
  ])('sends %s as a text frame', async (_label, name, text) => {
    const { client } = await join('/raw')
    expect(await client.ask(`send:${name}`)).toBe(text)
    await leave(client)
  })

  it('sends bytes as a binary frame', async () => {
    const { client } = await join('/raw')
    client.send('send:bytes')
    expect(await client.nextBytes()).toEqual([1, 2, 3])
    await leave(client)
  })

  it('hands a binary frame to message as an ArrayBuffer, untouched', async () => {
    const { client } = await join('/raw')
    client.send(new Uint8Array([5, 0, 250, 7]))
    expect(await client.nextText()).toBe('binary 4')
    expect(await client.nextBytes()).toEqual([5, 0, 250, 7])
    await leave(client)
  })

  it.each(['object', 'array', 'null', 'undefined'])(
    'closes the connection with 1011 when it is sent %s, and the object keeps serving',
    async (name) => {
      const { client } = await join('/raw')
      client.send(`send:${name}`)
      expect(await client.whenClosed()).toMatchObject({ code: 1011, reason: 'Internal Error' })
      const next = await join('/raw')
      expect(await next.client.ask('send:string')).toBe('some text')
      await leave(next.client)
    },
  )

  it("closes the connection that was sent an object, not the sender's", async () => {
    const sender = await join('/raw')
    const receiver = await join('/raw')
    expect(await sender.client.ask(`poison:${String(receiver.id)}`)).toBe(
      `poisoned ${String(receiver.id)}: send returned false`,
    )
    expect(await receiver.client.whenClosed()).toMatchObject({ code: 1011, reason: 'Internal Error' })
    expect(sender.client.isOpen).toBe(true)
    expect(await sender.client.ask('send:number')).toBe('42.5')
    await leave(sender.client)
  })
})
