import { env } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { MAX_ATTACHMENT_BYTES } from '../../src/index.js'
import { Client, eventually, sleep } from './client.js'

/**
 * What workerd itself does with hibernatable sockets, pinned on a bare
 * Durable Object, so that a runtime upgrade that changes it fails here, by
 * name, rather than somewhere inside the package's own tests.
 */
const contract = env.CONTRACT.get(env.CONTRACT.idFromName('contract'))

async function open(init: RequestInit = {}): Promise<Client> {
  const response = await contract.fetch('http://contract/', {
    ...init,
    headers: { Upgrade: 'websocket', ...(init.headers as Record<string, string> | undefined) },
  })
  if (response.webSocket === null) throw new Error(`expected a socket, got ${String(response.status)}`)
  return new Client(response.webSocket)
}

async function lastEntry(event: string): Promise<Record<string, unknown>> {
  const entries = await eventually(
    async () => (await contract.log()).filter((entry) => entry.event === event),
    (found) => found.length > 0,
  )
  return entries.at(-1) ?? {}
}

describe('the workerd runtime', () => {
  it('sends a fetch that carries Upgrade: websocket as a GET, whatever method it was given', async () => {
    const client = await open({ method: 'POST' })
    expect(await lastEntry('fetch')).toEqual({ event: 'fetch', method: 'GET', upgrade: 'websocket' })
    client.close(1000)
  })

  it('hands binary frames to webSocketMessage as an ArrayBuffer', async () => {
    const client = await open()
    client.send(new Uint8Array([1, 2, 3]))
    expect(await client.nextText()).toBe('recorded')
    expect(await lastEntry('message')).toEqual({ event: 'message', type: 'ArrayBuffer' })
    client.close(1000)
  })

  it('does not answer a close frame on a hibernatable socket by itself: the object has to', async () => {
    const client = await open()
    client.close(4000, 'client leaving')
    expect(await lastEntry('close')).toMatchObject({
      code: 4000,
      reason: 'client leaving',
      readyState: WebSocket.CLOSING,
    })
    await sleep(100)
    expect(client.socket.readyState).toBe(WebSocket.CLOSING)
  })

  it('hands every event of a socket the same WebSocket object while the object stays in memory', async () => {
    // The manager keys its connections by that object (a WeakMap); a new one per event would mean
    // reading the attachment on every message.
    const client = await open()
    client.send('first')
    expect(await client.nextText()).toBe('recorded')
    client.send('same socket?')
    expect(await client.nextText()).toBe('recorded')
    expect(await lastEntry('message')).toMatchObject({ sameSocket: true })
    client.close(1000)
  })

  it('lets the object send after the peer closed until it answers, and throws on send after that', async () => {
    // Connection.sendFrame relies on this: it reads readyState only when send throws.
    const client = await open()
    client.close(4000, 'probe send')
    const entry = await lastEntry('close')
    expect(entry).toMatchObject({
      reason: 'probe send',
      sendBeforeAnswer: 'sent',
      readyStateAfterAnswer: WebSocket.CLOSED,
    })
    expect(entry.sendAfterAnswer).toMatch(/^TypeError: /)
  })

  it('reports a close frame without a code as 1005', async () => {
    const client = await open()
    client.close()
    expect(await lastEntry('close')).toMatchObject({ code: 1005, reason: '' })
  })

  it(`refuses an attachment over ${String(MAX_ATTACHMENT_BYTES)} bytes with an error that says so`, async () => {
    const client = await open()
    expect(await client.ask('oversized attachment')).toBe('recorded')
    const { error } = await lastEntry('message')
    expect(String(error)).toContain(String(MAX_ATTACHMENT_BYTES))
    // writeRecord tells this error from others by these words.
    expect(String(error)).toMatch(/size|large|exceed|limit/i)
    client.close(1000)
  })

  it('ends every socket with 1006 and calls no webSocketClose when it evicts an object with webSockets: close', async () => {
    const client = await open()
    expect(await client.ask('before eviction')).toBe('recorded')
    const closesBefore = (await contract.log()).filter((entry) => entry.event === 'close').length
    await evictDurableObject(contract, { webSockets: 'close' })
    expect(await client.whenClosed()).toMatchObject({ code: 1006, wasClean: false })
    await sleep(100)
    expect((await contract.log()).filter((entry) => entry.event === 'close')).toHaveLength(closesBefore)
  })
})
