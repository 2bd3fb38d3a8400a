import { env } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_ATTACHMENT_BYTES } from '../../src/index.js'
import { connect, leave, stubOf } from './client.js'

const dataObject = stubOf(env.DATA)

interface Snapshot {
  id: number
  data: Record<string, unknown>
}

afterEach(() => {
  vi.restoreAllMocks()
})

// A new connection's record is first written after `open`, so these pin what happens when that
// first write is the one that fails.
describe('conn.data filled during open', () => {
  it('is stored once open returns, and survives a forced hibernation', async () => {
    const client = await connect('/data?grow=100')
    const { id } = await client.nextJson<Snapshot>()
    await evictDurableObject(dataObject, { webSockets: 'hibernate' })
    expect(await client.askJson<Snapshot>({ op: 'get' })).toEqual({ id, data: { blob: 'x'.repeat(100) } })
    await leave(client)
  })

  it(`over ${String(MAX_ATTACHMENT_BYTES)} bytes: logged, and the connection goes on with empty data that a woken object still knows`, async () => {
    const logged = vi.spyOn(console, 'error')
    const client = await connect(`/data?grow=${String(MAX_ATTACHMENT_BYTES + 1)}`)
    const { id } = await client.nextJson<Snapshot>()

    const line = logged.mock.calls.find(([message]) => String(message).includes(`connection ${String(id)}`))
    expect(line?.[0]).toContain('after the open handler')
    expect(line?.[1]).toMatchObject({ code: 'ERR_DWS_ATTACHMENT_TOO_LARGE' })

    expect(client.isOpen).toBe(true)
    expect(await client.askJson<Snapshot>({ op: 'get' })).toEqual({ id, data: {} })
    await evictDurableObject(dataObject, { webSockets: 'hibernate' })
    expect(await client.askJson<Snapshot>({ op: 'get' })).toEqual({ id, data: {} })
    expect(await client.askJson({ op: 'set', key: 'after', value: 1 })).toEqual({ ok: true })
    expect(await client.askJson<Snapshot>({ op: 'get' })).toEqual({ id, data: { after: 1 } })
    await leave(client)
  })
})
