import { env } from 'cloudflare:workers'
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as v from 'valibot'
import * as z from 'zod'
import { InvalidHandlerError, isDurableWebSocketError, websocket } from '../../src/index.js'
import { hungSchema, valibotChatStrict, zodChatStrict } from './fixture/endpoints/schemas.js'
import type { FixtureObject } from './fixture/record.js'
import { connect, leave } from './client.js'
import { closesOf } from './closesOf.js'
import { readFailure } from '../../src/shared/dataFrames.js'
import { SessionClient } from './sessionClient.js'
import { thrownBy } from './thrownBy.js'

/** What the fixture's malformed_message handlers answer. */
interface Malformed {
  malformed: string
  name: string | null
  code: string | null
  paths: string[] | null
  messagesAreText: boolean | null
}

const SENT_AT = Date.UTC(2026, 11, 4, 12)

afterEach(() => {
  vi.restoreAllMocks()
})

describe.each([
  { library: 'zod', strict: zodChatStrict },
  { library: 'valibot', strict: valibotChatStrict },
])('validate: a $library schema', ({ library, strict }) => {
  it('hands message the schema’s output: transformed, typed, and without the keys the schema does not know', async () => {
    const client = await connect(`/schema-${library}`)
    expect(await client.askJson({ text: 'hello', sentAt: SENT_AT, extra: 'dropped' })).toEqual({
      text: 'HELLO',
      isDate: true,
      year: 2026,
      keys: ['text', 'sentAt'],
    })
    await leave(client)
  })

  it('answers a request that passes with the schema’s output, and refuses one that fails without running its handler', async () => {
    const session = await SessionClient.open(`/schema-${library}`)
    const good = session.request(JSON.stringify({ text: 'hi', sentAt: SENT_AT }))
    expect(await session.next()).toMatchObject({
      payload: '{"text":"HI"}',
      mark: { type: 'reply', to: good },
    })
    const bad = session.request(JSON.stringify({ text: '', sentAt: SENT_AT }))
    const refused = await session.next()
    expect(refused.mark).toEqual({ type: 'failure', to: bad })
    expect(readFailure(refused.payload)).toEqual({ code: 'refused', message: 'The request is not valid.' })
    session.close(1000)
  })

  it('sends a message that fails to malformed_message with an InvalidMessageError holding the schema’s issues, and the connection stays open', async () => {
    const client = await connect(`/schema-${library}`)
    for (const [value, paths] of [
      [{ text: '', sentAt: SENT_AT }, ['text']],
      [{ text: 'hi', sentAt: 1.5 }, ['sentAt']],
      [{ text: '', sentAt: 'noon' }, ['sentAt', 'text']],
      [{}, ['sentAt', 'text']],
      [null, ['']],
      ['hello', ['']],
    ] as const) {
      const text = JSON.stringify(value)
      client.send(text)
      const reply = await client.nextJson<Malformed>()
      expect({ ...reply, paths: reply.paths?.toSorted() }).toEqual({
        malformed: text,
        name: 'InvalidMessageError',
        code: 'ERR_DWS_INVALID_MESSAGE',
        paths,
        messagesAreText: true,
      })
    }
    expect(await client.askJson({ text: 'still here', sentAt: SENT_AT })).toMatchObject({
      text: 'STILL HERE',
    })
    await leave(client)
  })

  it('closes the connection with 1007 "Malformed message" without a malformed_message handler, logging neither the text nor the issues', async () => {
    const logged = [vi.spyOn(console, 'warn'), vi.spyOn(console, 'error'), vi.spyOn(console, 'log')]
    const room = `strict-${library}`
    const bystander = await connect(`/schema-${library}-strict/${room}`)
    const client = await connect(`/schema-${library}-strict/${room}`)
    client.sendJson({ text: 'SECRET-TEXT', sentAt: 'SECRET-TIME' })
    expect(await client.whenClosed()).toEqual({ code: 1007, reason: 'Malformed message', wasClean: true })
    expect(await closesOf(strict.room<FixtureObject>(env, room), 2)).toEqual([
      { event: 'close', id: 2, code: 1007, reason: 'Malformed message' },
    ])
    const lines = logged.flatMap((spy) => spy.mock.calls.map((call) => call.map(String).join(' ')))
    expect(lines).toContain(
      `[durable-websocket] connection 2 in room ${room} sent a message that failed validate, closing it with 1007`,
    )
    expect(lines.join('\n')).not.toContain('SECRET')
    expect(await bystander.askJson({ text: 'unaffected', sentAt: SENT_AT })).toMatchObject({
      text: 'UNAFFECTED',
    })
    await leave(bystander)
  })

  it('with async checks of random length, answers each connection’s messages in the order they were sent, refused ones included', async () => {
    const [first, second] = await Promise.all([
      connect(`/schema-${library}-async`),
      connect(`/schema-${library}-async`),
    ])
    const sent = Array.from({ length: 24 }, (_, i) => (i % 4 === 3 ? -i : i))
    for (const n of sent) {
      first.sendJson({ n })
      second.sendJson({ n: n + 100 })
    }
    for (const [client, offset] of [
      [first, 0],
      [second, 100],
    ] as const) {
      const replies = []
      for (const _ of sent) replies.push(await client.nextJson())
      expect(replies).toEqual(
        sent.map((n) =>
          n + offset >= 0
            ? { n: n + offset }
            : {
                malformed: JSON.stringify({ n }),
                name: 'InvalidMessageError',
                code: 'ERR_DWS_INVALID_MESSAGE',
                paths: [''],
                messagesAreText: true,
              },
        ),
      )
    }
    await leave(first, second)
  })
})

describe("add('message', schema, handler)", () => {
  it('runs the handler’s schema after validate, on what validate returned, and hands the handler its output', async () => {
    const client = await connect('/schema-per-event')
    expect(await client.askJson({ move: { x: 1, y: 2 } })).toEqual({ x: 1, y: -2 })
    await leave(client)
  })

  it('sends a message either schema refuses to malformed_message, with that schema’s issues', async () => {
    const client = await connect('/schema-per-event')
    for (const [value, paths] of [
      [{ mvoe: { x: 1, y: 2 } }, ['move']],
      [{ move: { x: 'left', y: 2 } }, ['x']],
    ] as const) {
      const text = JSON.stringify(value)
      client.send(text)
      expect(await client.nextJson<Malformed>()).toEqual({
        malformed: text,
        name: 'InvalidMessageError',
        code: 'ERR_DWS_INVALID_MESSAGE',
        paths,
        messagesAreText: true,
      })
    }
    await leave(client)
  })
})

describe('an async schema that never settles', () => {
  it('counts as a failed handler after handlerTimeout: the connection is closed with 1011 and the messages behind it are dropped', async () => {
    const failed = vi.spyOn(console, 'error')
    const room = 'hung'
    const client = await connect(`/schema-hung/${room}`)
    expect(await client.askJson('first')).toBe('echo:first')
    client.sendJson('hang')
    client.sendJson('behind')
    expect(await client.whenClosed()).toEqual({ code: 1011, reason: 'Internal Error', wasClean: true })
    await expect(client.next()).rejects.toThrow('socket closed (1011 Internal Error) before a message came')
    expect(await closesOf(hungSchema.room<FixtureObject>(env, room), 1)).toEqual([
      { event: 'close', id: 1, code: 1011, reason: 'Internal Error' },
    ])
    const codes = failed.mock.calls.flat().map((arg) => (isDurableWebSocketError(arg) ? arg.code : undefined))
    expect(codes).toContain('ERR_DWS_HANDLER_TIMEOUT')
  })
})

describe('schema mistakes, at start-up', () => {
  it('websocket({ validate }) throws ERR_DWS_INVALID_OPTIONS for anything but a function or a Standard Schema', () => {
    for (const validate of [{ text: 'string' }, 'zod', { '~standard': { version: 2 } }]) {
      const error = thrownBy(() =>
        websocket({ binding: 'X', serializer: 'json', validate: validate as never }),
      )
      expect(error).toMatchObject({ code: 'ERR_DWS_INVALID_OPTIONS' })
      expect((error as Error).message).toContain('Standard Schema')
    }
  })

  it('websocket({ validate: schema }) without a serializer throws ERR_DWS_INVALID_OPTIONS', () => {
    expect(thrownBy(() => websocket({ binding: 'X', validate: z.string() }))).toMatchObject({
      code: 'ERR_DWS_INVALID_OPTIONS',
    })
  })

  it("add('message', schema, handler) needs a serializer, a schema and the message event, and a function", () => {
    const bare = websocket({ binding: 'X' })
    expect(thrownBy(() => bare.add('message', v.string(), () => undefined))).toMatchObject({
      code: 'ERR_DWS_INVALID_OPTIONS',
    })
    const json = websocket({ binding: 'X', serializer: 'json' })
    expect(thrownBy(() => json.add('open' as 'message', v.string(), () => undefined))).toMatchObject({
      code: 'ERR_DWS_INVALID_OPTIONS',
    })
    expect(thrownBy(() => json.add('message', { type: 'string' } as never, () => undefined))).toMatchObject({
      code: 'ERR_DWS_INVALID_OPTIONS',
    })
    expect(thrownBy(() => json.add('message', v.string(), 'handler' as never))).toBeInstanceOf(
      InvalidHandlerError,
    )
  })
})
