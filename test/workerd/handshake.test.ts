import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { gate, type GateObject } from './fixture/endpoints/gate.js'
import { connect, leave, request, upgrade } from './client.js'

/**
 * Bad handshakes to the mount path. Each test uses a room of its own, whose
 * object records every request that reaches it, so "the object is never
 * touched" is read from the object itself.
 */
function roomOf(name: string): DurableObjectStub<GateObject> {
  return gate.room<GateObject>(env, name)
}

/** A well-formed key: 16 bytes in base64. */
const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='

describe('a request to the mount path that is not a WebSocket handshake', () => {
  it('gets 426 with Upgrade: websocket for a GET without Upgrade, and the object is never reached', async () => {
    const response = await request('/gate/plain-get')
    expect(response.status).toBe(426)
    expect(response.headers.get('Upgrade')).toBe('websocket')
    expect(response.headers.get('Connection')).toBe('Upgrade')
    expect(response.webSocket).toBeNull()
    expect(await response.text()).toBe('Upgrade Required: connect with a WebSocket client.\n')
    expect(await roomOf('plain-get').fetches()).toBe(0)
  })

  it('gets 405 with Allow: GET for POST, PUT, DELETE, HEAD and OPTIONS, and the object is never reached', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
      const response = await request('/gate/other-methods', { method })
      expect(response.status, method).toBe(405)
      expect(response.headers.get('Allow'), method).toBe('GET')
      expect(await response.text(), method).toBe(
        method === 'HEAD'
          ? ''
          : 'This path only accepts WebSocket upgrades: GET with "Upgrade: websocket".\n',
      )
    }
    expect(await roomOf('other-methods').fetches()).toBe(0)

    // The same room takes a real handshake, and that one does reach the object.
    const client = await connect('/gate/other-methods')
    expect(await client.nextText()).toMatch(/^1 /)
    expect(await roomOf('other-methods').fetches()).toBe(1)
    await leave(client)
  })
})

describe('the Upgrade header', () => {
  it('upgrades in any letter case', async () => {
    for (const value of ['websocket', 'WebSocket', 'WEBSOCKET']) {
      const client = await connect('/gate/letter-case', { Upgrade: value })
      expect(await client.nextText()).toMatch(/^\d+ websocket$/i)
      expect(await client.ask('hi')).toBe('text [hi]')
      await leave(client)
    }
  })

  it('is refused with 426 when it lists another protocol beside websocket, before any object is reached', async () => {
    for (const value of ['websocket, foo', 'foo, websocket', 'websocket,']) {
      const response = await upgrade('/gate/upgrade-list', { Upgrade: value })
      expect(response.status, value).toBe(426)
      expect(response.headers.get('Upgrade')).toBe('websocket')
      expect(response.webSocket).toBeNull()
    }
    expect(await roomOf('upgrade-list').fetches()).toBe(0)
    expect(await roomOf('upgrade-list').lastId()).toBe(0)
  })

  it('must be exactly "websocket" for workerd to hand a socket back: the runtime contract behind the 426 above', async () => {
    const contract = env.CONTRACT.get(env.CONTRACT.idFromName('upgrade-list'))
    const thrown = await contract.fetch('http://contract/', { headers: { Upgrade: 'websocket, foo' } }).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(String(thrown)).toContain('did not contain the header "Upgrade: websocket"')
  })
})

describe('Sec-WebSocket-Version and Sec-WebSocket-Key', () => {
  it('answers a version other than 13 with 426 naming 13, before any object is reached', async () => {
    for (const version of ['8', '12', '14', 'thirteen']) {
      const response = await upgrade('/gate/version', { 'Sec-WebSocket-Version': version })
      expect(response.status, version).toBe(426)
      expect(response.headers.get('Sec-WebSocket-Version')).toBe('13')
      expect(await response.text()).toMatch(/only version 13/)
    }
    expect(await roomOf('version').fetches()).toBe(0)
  })

  it('answers a key that is not 16 bytes of base64 with 400, before any object is reached', async () => {
    for (const key of ['short', KEY.slice(0, -2), `${KEY.slice(0, -3)}*==`, `${KEY}AAAA`, 'x'.repeat(24)]) {
      const response = await upgrade('/gate/key', { 'Sec-WebSocket-Key': key })
      expect(response.status, key).toBe(400)
      expect(await response.text()).toBe('Bad Request: Sec-WebSocket-Key must be 16 bytes in base64.\n')
    }
    expect(await roomOf('key').fetches()).toBe(0)
  })

  it('upgrades with a well-formed key and version 13, and with neither, since the runtime checks them on the wire', async () => {
    for (const headers of [{ 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': KEY }, {}]) {
      const client = await connect('/gate/well-formed', headers)
      expect(await client.nextText()).toMatch(/^\d+ websocket$/)
      await leave(client)
    }
  })
})
