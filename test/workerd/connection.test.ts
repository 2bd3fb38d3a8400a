import { env } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_ATTACHMENT_BYTES, MAX_CLOSE_REASON_BYTES } from '../../src/index.js'
import { pending, type PendingObject } from './fixture/endpoints/pending.js'
import { connect, join, joinJson, leave, stubOf, type Client } from './client.js'

const dataObject = stubOf(env.DATA)

/** What /data greets each connection with, and answers to {op: 'get'}. */
interface Snapshot {
  id: number
  data: Record<string, unknown>
}

interface Failure {
  name: string
  message: string
  code: string | null
}

async function dataOf(client: Client): Promise<Record<string, unknown>> {
  return (await client.askJson<Snapshot>({ op: 'get' })).data
}

function hibernate(): Promise<void> {
  return evictDurableObject(dataObject, { webSockets: 'hibernate' })
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('conn.data', () => {
  it('starts as an empty object', async () => {
    const { client, data } = await joinJson<Snapshot>('/data')
    expect(data).toEqual({})
    await leave(client)
  })

  it('keeps changes a handler made in place, across a forced hibernation', async () => {
    const { client } = await joinJson<Snapshot>('/data')
    expect(await client.askJson({ op: 'set', key: 'name', value: 'Ada' })).toEqual({ ok: true })
    expect(await client.askJson({ op: 'set', key: 'scores', value: { best: [3, 1, 4] } })).toEqual({
      ok: true,
    })
    await hibernate()
    expect(await dataOf(client)).toEqual({ name: 'Ada', scores: { best: [3, 1, 4] } })
    await leave(client)
  })

  it('keeps a change an async message handler made after an await, across the rebuild of the object', async () => {
    const room = pending.room<PendingObject>(env, 'async-data')
    const { client } = await join('/pending/async-data')
    expect(await client.ask('set:after an await')).toBe('set')
    await evictDurableObject(room, { webSockets: 'hibernate' })
    expect(JSON.parse(await client.ask('get'))).toEqual({ value: 'after an await' })
    // The answer came from a new instance, built from the socket's attachment.
    expect((await room.log()).filter((entry) => entry.event === 'constructed')).toHaveLength(2)
    await leave(client)
  })

  it('keeps an object that replaced it, across a forced hibernation', async () => {
    const { client } = await joinJson<Snapshot>('/data')
    await client.askJson({ op: 'set', key: 'old', value: true })
    expect(await client.askJson({ op: 'replace', data: { fresh: 'start' } })).toEqual({ ok: true })
    await hibernate()
    expect(await dataOf(client)).toEqual({ fresh: 'start' })
    await leave(client)
  })

  it('belongs to its own connection only', async () => {
    const a = await joinJson<Snapshot>('/data')
    const b = await joinJson<Snapshot>('/data')
    await a.client.askJson({ op: 'set', key: 'owner', value: 'a' })
    await hibernate()
    expect(await dataOf(a.client)).toEqual({ owner: 'a' })
    expect(await dataOf(b.client)).toEqual({})
    await leave(a.client, b.client)
  })

  it('takes a replacement just under the 16 KiB attachment limit', async () => {
    const { client } = await joinJson<Snapshot>('/data')
    const blob = 'x'.repeat(MAX_ATTACHMENT_BYTES - 512)
    expect(await client.askJson({ op: 'replace', data: { blob } })).toEqual({ ok: true })
    await hibernate()
    expect(await dataOf(client)).toEqual({ blob })
    await leave(client)
  })

  it('refuses a replacement over 16 KiB with ERR_DWS_ATTACHMENT_TOO_LARGE, naming the limit and the connection', async () => {
    const { client, id } = await joinJson<Snapshot>('/data')
    await client.askJson({ op: 'set', key: 'keep', value: 'me' })
    const failure = await client.askJson<Failure>({
      op: 'replace',
      data: { blob: 'x'.repeat(MAX_ATTACHMENT_BYTES) },
    })
    expect(failure.code).toBe('ERR_DWS_ATTACHMENT_TOO_LARGE')
    expect(failure.name).toBe('DurableWebSocketError')
    expect(failure.message).toContain(String(MAX_ATTACHMENT_BYTES))
    expect(failure.message).toContain(`connection ${String(id)}`)

    expect(await dataOf(client)).toEqual({ keep: 'me' })
    await hibernate()
    expect(await dataOf(client)).toEqual({ keep: 'me' })
    await leave(client)
  })

  it('logs a change in place that grows past 16 KiB, and the connection goes on with its last good data', async () => {
    const logged = vi.spyOn(console, 'error')
    const { client, id } = await joinJson<Snapshot>('/data')
    await client.askJson({ op: 'set', key: 'keep', value: 'me' })
    expect(await client.askJson({ op: 'grow', key: 'blob', bytes: MAX_ATTACHMENT_BYTES + 1 })).toEqual({
      ok: true,
    })

    const line = logged.mock.calls.find(([message]) => String(message).includes(`connection ${String(id)}`))
    expect(line?.[0]).toContain('after the message handler')
    expect(line?.[1]).toMatchObject({ code: 'ERR_DWS_ATTACHMENT_TOO_LARGE' })

    expect(client.isOpen).toBe(true)
    expect(await dataOf(client)).toEqual({ keep: 'me' })
    await hibernate()
    expect(await dataOf(client)).toEqual({ keep: 'me' })
    expect(await client.askJson({ op: 'set', key: 'more', value: 1 })).toEqual({ ok: true })
    expect(await dataOf(client)).toEqual({ keep: 'me', more: 1 })
    await leave(client)
  })

  it('refuses a replacement that is not a plain object with ERR_DWS_DATA_NOT_STORABLE', async () => {
    const { client } = await joinJson<Snapshot>('/data')
    for (const data of [[1, 2], null, 'text', 7]) {
      const failure = await client.askJson<Failure>({ op: 'replace', data })
      expect(failure.code).toBe('ERR_DWS_DATA_NOT_STORABLE')
    }
    expect(await dataOf(client)).toEqual({})
    await leave(client)
  })
})

describe('conn.manager', () => {
  it("gives a handler the object's open connections, its storage and its env", async () => {
    const a = await joinJson<Snapshot>('/data')
    const b = await joinJson<Snapshot>('/data')
    const first = await a.client.askJson<{ ids: number[]; self: boolean; visits: number; envVar: string }>({
      op: 'manager',
    })
    expect(first.ids).toEqual(expect.arrayContaining([a.id, b.id]))
    expect(first.self).toBe(true)
    expect(first.envVar).toBe(env.FIXTURE_VAR)

    const second = await b.client.askJson<{ visits: number }>({ op: 'manager' })
    expect(second.visits).toBe(first.visits + 1)
    await leave(a.client, b.client)
  })
})

describe('conn.close(code?, reason?)', () => {
  /** /closer calls conn.close with what it is sent and answers only when close throws. */
  async function closeWith(request: { code?: number; reason?: string }): Promise<Client> {
    const client = await connect('/closer')
    client.sendJson(request)
    return client
  }

  it('closes with 1000 and no reason when called with no arguments', async () => {
    const client = await closeWith({})
    expect(await client.whenClosed()).toEqual({ code: 1000, reason: '', wasClean: true })
  })

  it.each([1000, 1011, 4000])('sends code %i and its reason to the client', async (code) => {
    const client = await closeWith({ code, reason: `closing with ${String(code)}` })
    expect(await client.whenClosed()).toEqual({
      code,
      reason: `closing with ${String(code)}`,
      wasClean: true,
    })
  })

  it.each([
    ['ASCII', 'a'.repeat(MAX_CLOSE_REASON_BYTES)],
    ['three-byte', '€'.repeat(41)],
    ['four-byte and one-byte', `${'😀'.repeat(30)}abc`],
  ])('sends a reason of exactly 123 bytes of %s characters', async (_kind, reason) => {
    expect(new TextEncoder().encode(reason).byteLength).toBe(123)
    const client = await closeWith({ code: 4000, reason })
    expect(await client.whenClosed()).toEqual({ code: 4000, reason, wasClean: true })
  })

  it.each([1005, 1006, 1015, 999, 1004, 2000, 5000])(
    'refuses code %i with ERR_DWS_INVALID_CLOSE and leaves the connection open',
    async (code) => {
      const client = await closeWith({ code })
      const failure = await client.nextJson<Failure>()
      expect(failure.code).toBe('ERR_DWS_INVALID_CLOSE')
      expect(failure.message).toContain(String(code))
      expect(client.isOpen).toBe(true)
      client.sendJson({ code: 4000, reason: 'still here' })
      expect(await client.whenClosed()).toMatchObject({ code: 4000, reason: 'still here' })
    },
  )

  it.each([
    ['ASCII', 'a'.repeat(124)],
    ['three-byte', `${'€'.repeat(41)}a`],
    ['four-byte', '😀'.repeat(31)],
  ])('refuses a reason of 124 bytes of %s characters with ERR_DWS_INVALID_CLOSE', async (_kind, reason) => {
    expect(new TextEncoder().encode(reason).byteLength).toBe(124)
    const client = await closeWith({ code: 1000, reason })
    const failure = await client.nextJson<Failure>()
    expect(failure.code).toBe('ERR_DWS_INVALID_CLOSE')
    expect(failure.message).toContain('123')
    expect(client.isOpen).toBe(true)
    await leave(client)
  })
})
