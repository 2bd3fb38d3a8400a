import { env } from 'cloudflare:workers'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Entry } from './fixture/record.js'
import { closesOf as closesOfIn } from './closesOf.js'
import { connect, eventually, leave, stubOf, type Client, type Closed } from './client.js'

const faulty = stubOf(env.FAULTY)

/** Every error the fixture throws says SECRET; none of it may reach a client. */
function expectBareInternalError(closed: Closed): void {
  expect(closed.code).toBe(1011)
  expect(closed.reason).toBe('Internal Error')
  expect(closed.reason).not.toContain('SECRET')
  expect(closed.reason).not.toMatch(/\bat\b|\.ts:\d/)
}

function closesOf(id: number): Promise<Entry[]> {
  return closesOfIn(faulty, id)
}

/** Connects to /faulty, which greets a connection whose open succeeded with its id. */
async function join(): Promise<{ client: Client; id: number }> {
  const client = await connect('/faulty')
  const greeting = await client.nextText()
  expect(greeting).toMatch(/^ready \d+$/)
  return { client, id: Number(greeting.slice('ready '.length)) }
}

async function bystander(): Promise<Client> {
  return (await join()).client
}

/** The other connections still answer, and a new one can join. */
async function stillServing(...clients: Client[]): Promise<void> {
  for (const client of clients) expect(await client.ask('still there')).toBe('pong still there')
  const newcomer = await bystander()
  expect(await newcomer.ask('hello')).toBe('pong hello')
  await leave(newcomer)
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('a handler that throws or rejects', () => {
  it.each([
    ['throws', 'sync'],
    ['rejects', 'async'],
  ])('in open: the connection %s closed with 1011, and the object keeps serving', async (_how, fail) => {
    const logged = vi.spyOn(console, 'error')
    const other = await bystander()
    const client = await connect(`/faulty?fail=${fail}`)
    expectBareInternalError(await client.whenClosed())
    expect(logged.mock.calls.some(([message]) => String(message).includes('the open handler failed'))).toBe(
      true,
    )
    await stillServing(other)
    await leave(other)
  })

  it.each([
    ['throws', 'throw'],
    ['rejects', 'reject'],
  ])(
    'in message: when it %s, only its connection closes, with 1011 and a bare reason, and close runs once',
    async (_how, message) => {
      const logged = vi.spyOn(console, 'error')
      const other = await bystander()
      const { client, id } = await join()
      client.send(message)
      expectBareInternalError(await client.whenClosed())
      expect(await closesOf(id)).toEqual([{ event: 'close', id, code: 1011, reason: 'Internal Error' }])

      const line = logged.mock.calls.find(([text]) => String(text).includes('the message handler failed'))
      expect(String(line?.[0])).toContain(`connection ${String(id)}`)
      expect(String(line?.[1])).toContain('SECRET')
      await stillServing(other)
      await leave(other)
    },
  )

  it.each([
    ['throws', 'sync'],
    ['rejects', 'async'],
  ])('in close: when it %s, the error is logged and the object keeps serving', async (_how, fail) => {
    const logged = vi.spyOn(console, 'error')
    const other = await bystander()
    const { client, id } = await join()
    expect(await client.ask(`fail-close:${fail}`)).toBe('armed')
    client.close(4000, 'leaving')
    expect(await client.whenClosed()).toMatchObject({ code: 4000, reason: 'leaving' })
    expect(await closesOf(id)).toEqual([{ event: 'close', id, code: 4000, reason: 'leaving' }])
    await eventually(
      () => logged.mock.calls.map(([text]) => String(text)),
      (lines) => lines.some((text) => text.includes(`the close handler failed for connection ${String(id)}`)),
    )
    await stillServing(other)
    await leave(other)
  })
})
