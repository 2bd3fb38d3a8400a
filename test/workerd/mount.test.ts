import { env } from 'cloudflare:workers'
import { createExecutionContext } from 'cloudflare:test'
import { mountAt } from '../../src/mount/mount.js'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Client, connect, eventually, leave, request, stubOf, upgrade } from './client.js'

const BARE_500 = 'Internal Server Error\n'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('handler() and run() in your own router', () => {
  it('handler() upgrades without running the middleware', async () => {
    const client = await connect('/routed/raw')
    expect(await client.nextText()).toMatch(/^routed \d+$/)
    await leave(client)
  })

  it('run() runs the middleware before it upgrades', async () => {
    expect((await upgrade('/routed/run')).status).toBe(401)
    expect((await upgrade('/routed/run', { Authorization: 'Bearer nope' })).status).toBe(403)
    const client = await connect('/routed/run', { Authorization: 'Bearer letmein' })
    expect(await client.nextText()).toMatch(/^routed \d+$/)
    await leave(client)
  })

  it('both answer a request that is not an upgrade with the default 426', async () => {
    for (const path of ['/routed/raw', '/routed/run']) expect((await request(path)).status).toBe(426)
  })
})

describe('mount(path, app)', () => {
  it('sends every other path to the app, with the request unchanged', async () => {
    const response = await request('/mounted/echo', {
      method: 'POST',
      body: 'the payload',
      headers: { 'x-custom': 'kept' },
    })
    expect(response.status).toBe(202)
    expect(await response.text()).toBe('the payload')
    expect(response.headers.get('x-method')).toBe('POST')
    expect(response.headers.get('x-url')).toBe('http://fixture.test/mounted/echo')
    expect(response.headers.get('x-custom')).toBe('kept')
  })

  it('passes env and ctx to the app', async () => {
    const response = await request('/mounted/env')
    expect(await response.json()).toEqual({
      envVar: env.FIXTURE_VAR,
      binding: 'function',
      waitUntil: 'function',
    })
  })

  it("keeps the app's own 404", async () => {
    const response = await request('/mounted/nowhere', { headers: { Origin: 'https://site.example' } })
    expect(response.status).toBe(404)
    // The CORS header shows the app's AutoRouter made this 404, not a fallback of mount().
    expect(response.headers.get('Access-Control-Allow-Origin')).toBe('*')
  })

  it("lets the app add CORS headers to its responses and leaves the socket's 101 alone", async () => {
    const hello = await request('/mounted/hello', { headers: { Origin: 'https://site.example' } })
    expect(hello.status).toBe(200)
    expect(await hello.text()).toBe('hello from the app')
    expect(hello.headers.get('Access-Control-Allow-Origin')).toBe('*')

    const preflight = await request('/mounted/hello', {
      method: 'OPTIONS',
      headers: { Origin: 'https://site.example', 'Access-Control-Request-Method': 'GET' },
    })
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe('*')

    const handshake = await upgrade('/mounted/ws', { Origin: 'https://site.example' })
    expect(handshake.status).toBe(101)
    expect(handshake.headers.get('Access-Control-Allow-Origin')).toBeNull()
    expect(handshake.webSocket).not.toBeNull()
    const client = new Client(handshake.webSocket!)
    expect(await client.ask('still a socket')).toBe('mounted echo still a socket')
    await leave(client)
  })

  it('answers the mount path itself, not the app, for a request that is not an upgrade', async () => {
    const response = await request('/mounted/ws')
    expect(response.status).toBe(426)
    expect(response.headers.get('Access-Control-Allow-Origin')).toBeNull()
  })

  it('answers a path no app route takes with 404 when the app returns nothing', async () => {
    const upgrades: string[] = []
    const worker = mountAt(
      '/ws',
      (request) => {
        upgrades.push(request.url)
        return Promise.resolve(new Response('upgraded'))
      },
      { fetch: () => undefined },
    )
    const response = await worker.fetch(new Request('http://x/elsewhere'), env, createExecutionContext())
    expect(response.status).toBe(404)
    expect(upgrades).toEqual([])
  })

  it('answers a path below a room with 400, since a room name holds no "/"', async () => {
    const response = await request('/ids/a/b')
    expect(response.status).toBe(400)
    expect(await response.text()).toMatch(/room name may not contain "\/"/)
  })
})

describe('objectRouter', () => {
  const counter = stubOf(env.COUNTER)

  it('gets the requests that reach the object but are not upgrades, with the manager as second argument', async () => {
    const a = await connect('/counter')
    const b = await connect('/counter')
    await a.next()
    await b.next()
    const response = await counter.fetch('http://object/count')
    expect(await response.json()).toEqual({ connections: await counter.count(), name: 'default' })
    expect(await counter.count()).toBeGreaterThanOrEqual(2)
    await leave(a, b)
  })

  it('leaves the answer to the default 404 when it returns nothing', async () => {
    const response = await counter.fetch('http://object/unknown')
    expect(response.status).toBe(404)
  })

  it('defaults to a 404 for every such request when the module has none', async () => {
    const response = await stubOf(env.LIFECYCLE).fetch('http://object/count')
    expect(response.status).toBe(404)
    expect(await response.text()).toBe('Not Found\n')
  })
})

describe('RPC methods on a WebSocketObject subclass', () => {
  const counter = stubOf(env.COUNTER)

  it('can be called on the stub and reach the connections through this.manager', async () => {
    await eventually(
      () => counter.count(),
      (count) => count === 0,
    )
    const a = await connect('/counter')
    const b = await connect('/counter')
    await a.next()
    await b.next()
    expect(await counter.count()).toBe(2)
    expect(await counter.announce('hello, room')).toBe(2)
    expect(await a.nextText()).toBe('announcement: hello, room')
    expect(await b.nextText()).toBe('announcement: hello, room')
    await leave(a, b)
    expect(await counter.count()).toBe(0)
  })
})

describe('a misconfigured script', () => {
  it('answers 500 with a bare body, and logs why, when the binding is missing', async () => {
    const logged = vi.spyOn(console, 'error')
    const response = await upgrade('/unbound')
    expect(response.status).toBe(500)
    expect(await response.text()).toBe(BARE_500)
    expect(
      logged.mock.calls.some(([, error]) => (error as { code?: string }).code === 'ERR_DWS_MISSING_BINDING'),
    ).toBe(true)
  })

  it('answers 500 with a bare body when the error handler throws', async () => {
    const response = await request('/unbound')
    expect(response.status).toBe(500)
    expect(await response.text()).toBe(BARE_500)
  })

  it('fails with ERR_DWS_NO_MODULE when a class does not say which of several modules it serves', async () => {
    const thrown = await stubOf(env.ORPHAN)
      .fetch('http://object/', { headers: { Upgrade: 'websocket' } })
      .then(
        () => undefined,
        (error: unknown) => error,
      )
    expect((thrown as { code?: string } | undefined)?.code).toBe('ERR_DWS_NO_MODULE')
    expect(String(thrown)).toContain('OrphanObject')

    const response = await upgrade('/orphan')
    expect(response.status).toBe(500)
    expect(await response.text()).toBe(BARE_500)
  })
})
