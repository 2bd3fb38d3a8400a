import { env } from 'cloudflare:workers'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_ATTACHMENT_BYTES, MAX_CLOSE_REASON_BYTES } from '../../src/index.js'
import { careless, type CarelessObject } from './fixture/endpoints/careless.js'
import type { Entry } from './fixture/record.js'
import { closesDelivered } from './closesOf.js'
import { eventually, joinJson, leave } from './client.js'

/**
 * /careless lets whatever conn.close, conn.data and conn.send refuse escape
 * its message handler; connection.test.ts shows the same refusals caught.
 */

afterEach(() => {
  vi.restoreAllMocks()
})

function roomOf(name: string): DurableObjectStub<CarelessObject> {
  return careless.room<CarelessObject>(env, name)
}

async function entriesOf(room: string, id: number, event: string): Promise<Entry[]> {
  const read = async (): Promise<Entry[]> =>
    (await roomOf(room).log()).filter((entry) => entry.id === id && entry.event === event)
  await eventually(read, (found) => found.length > 0)
  await closesDelivered(roomOf(room))
  return read()
}

/** The console.error line that names the connection, and the error logged with it. */
function loggedFor(
  spy: { mock: { calls: unknown[][] } },
  label: string,
): { line: string; code: unknown } | undefined {
  const call = spy.mock.calls.find(([line]) => String(line).includes(label))
  return call === undefined
    ? undefined
    : { line: String(call[0]), code: (call[1] as { code?: unknown } | undefined)?.code }
}

describe('a handler that lets the error of conn.close(code, reason) escape', () => {
  it.each([999, 1005, 2000])(
    'for code %i: the connection is closed with 1011 "Internal Error", close runs once, and the log names ERR_DWS_INVALID_CLOSE',
    async (code) => {
      const logged = vi.spyOn(console, 'error')
      const room = `bad-code-${String(code)}`
      const { client, id } = await joinJson<{ id: number }>(`/careless/${room}`)
      client.sendJson({ op: 'close', code })
      expect(await client.whenClosed()).toEqual({ code: 1011, reason: 'Internal Error', wasClean: true })
      expect(await entriesOf(room, id, 'close')).toEqual([
        { event: 'close', id, code: 1011, reason: 'Internal Error', sentInClose: false },
      ])
      expect(loggedFor(logged, `connection ${String(id)} in room ${room}`)).toEqual({
        line: `[durable-websocket] the message handler failed for connection ${String(id)} in room ${room}, closing it with 1011:`,
        code: 'ERR_DWS_INVALID_CLOSE',
      })
    },
  )

  it(`for a reason over ${String(MAX_CLOSE_REASON_BYTES)} bytes: the same 1011, and the long reason is never sent`, async () => {
    const logged = vi.spyOn(console, 'error')
    const { client, id } = await joinJson<{ id: number }>('/careless/long-reason')
    client.sendJson({ op: 'close', code: 4000, reason: 'r'.repeat(MAX_CLOSE_REASON_BYTES + 1) })
    expect(await client.whenClosed()).toEqual({ code: 1011, reason: 'Internal Error', wasClean: true })
    expect(loggedFor(logged, `connection ${String(id)} in room long-reason`)?.code).toBe(
      'ERR_DWS_INVALID_CLOSE',
    )
  })
})

describe('a handler that lets the error of conn.data = value escape', () => {
  it(`over the ${String(MAX_ATTACHMENT_BYTES)}-byte attachment limit: 1011, and the log names ERR_DWS_ATTACHMENT_TOO_LARGE`, async () => {
    const logged = vi.spyOn(console, 'error')
    const { client, id } = await joinJson<{ id: number }>('/careless/big-data')
    expect(await client.askJson({ op: 'data', bytes: 1_000 })).toEqual({
      stored: 1_000,
      limit: MAX_ATTACHMENT_BYTES,
    })
    client.sendJson({ op: 'data', bytes: MAX_ATTACHMENT_BYTES })
    expect(await client.whenClosed()).toEqual({ code: 1011, reason: 'Internal Error', wasClean: true })
    expect(loggedFor(logged, `connection ${String(id)} in room big-data`)?.code).toBe(
      'ERR_DWS_ATTACHMENT_TOO_LARGE',
    )
    expect(await entriesOf('big-data', id, 'close')).toHaveLength(1)
  })
})

describe('conn.send(value) of what the serializer cannot encode', () => {
  it.each(['bigint', 'cycle', 'function'])(
    'of a %s: send returns false without throwing, and only that connection is closed with 1011',
    async (value) => {
      const logged = vi.spyOn(console, 'error')
      const room = `unsendable-${value}`
      const bystander = await joinJson<{ id: number }>(`/careless/${room}`)
      const { client, id } = await joinJson<{ id: number }>(`/careless/${room}`)
      client.sendJson({ op: 'send', value })
      expect(await client.whenClosed()).toEqual({ code: 1011, reason: 'Internal Error', wasClean: true })
      expect(await entriesOf(room, id, 'sent')).toEqual([{ event: 'sent', id, sent: false, closed: true }])
      expect(loggedFor(logged, `connection ${String(id)} in room ${room}`)).toEqual({
        line: `[durable-websocket] invalid data sent to connection ${String(id)} in room ${room}, disconnecting:`,
        code: 'ERR_DWS_UNSENDABLE_MESSAGE',
      })
      expect(bystander.client.isOpen).toBe(true)
      await leave(bystander.client)
    },
  )
})

describe('conn.send(value) after the connection closed', () => {
  it('returns false, throws nothing and sends nothing, after conn.close and inside close', async () => {
    const logged = vi.spyOn(console, 'error')
    const { client, id } = await joinJson<{ id: number }>('/careless/after-close')
    client.sendJson({ op: 'close-then-send' })
    expect(await client.whenClosed()).toEqual({ code: 4000, reason: 'done', wasClean: true })
    await expect(client.next()).rejects.toThrow(/socket closed \(4000 done\) before a message came/)
    expect(await entriesOf('after-close', id, 'sent')).toEqual([
      { event: 'sent', id, sent: false, closed: true },
    ])
    expect(await entriesOf('after-close', id, 'close')).toEqual([
      { event: 'close', id, code: 4000, reason: 'done', sentInClose: false },
    ])
    expect(logged).not.toHaveBeenCalled()
  })

  it('returns false, throws nothing and logs nothing, after the raw socket was closed around the package', async () => {
    const logged = vi.spyOn(console, 'error')
    const { client, id } = await joinJson<{ id: number }>('/careless/socket-closed')
    client.sendJson({ op: 'socket-close-then-send' })
    expect(await client.whenClosed()).toEqual({ code: 4001, reason: 'raw', wasClean: true })
    expect(await entriesOf('socket-closed', id, 'sent')).toEqual([
      { event: 'sent', id, sent: false, closed: true },
    ])
    expect(logged).not.toHaveBeenCalled()
  })

  it('returns false inside close when the client closed first', async () => {
    const { client, id } = await joinJson<{ id: number }>('/careless/client-left')
    client.close(4001, 'bye')
    await client.whenClosed()
    expect(await entriesOf('client-left', id, 'close')).toEqual([
      { event: 'close', id, code: 4001, reason: 'bye', sentInClose: false },
    ])
  })
})
