import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { allowOrigins, DurableWebSocketError, websocket, type AllowOriginsOptions } from '../../src/index.js'
import { guarded, guardedMiddleware, requireToken, tag } from './fixture/endpoints/guarded.js'
import { connect, leave, upgrade } from './client.js'

const AUTHORIZED = { Authorization: 'Bearer letmein' }

interface Opened {
  id: number
  locals: Record<string, unknown>
}

/** What the three middleware of /guarded put in locals, as open receives it. */
const EXPECTED_LOCALS = {
  order: ['first', 'second'],
  user: 'alice',
  envVar: env.FIXTURE_VAR,
  ctxWaitUntil: 'function',
}

async function joinGuarded(headers: Record<string, string> = AUTHORIZED): Promise<Opened> {
  const client = await connect('/guarded', headers)
  const opened = await client.nextJson<Opened>()
  await leave(client)
  return opened
}

describe('middleware: [factory, options] pairs', () => {
  it('run in order in the Worker, and what they put in context.locals reaches open', async () => {
    expect((await joinGuarded()).locals).toEqual(EXPECTED_LOCALS)
  })

  it('stop the request with the Response one of them returns, before the object is reached', async () => {
    const before = await joinGuarded()

    const missing = await upgrade('/guarded')
    expect(missing.status).toBe(401)
    expect(missing.headers.get('WWW-Authenticate')).toBe('Bearer')
    expect(missing.webSocket).toBeNull()

    const wrong = await upgrade('/guarded', { Authorization: 'Bearer guess' })
    expect(wrong.status).toBe(403)
    expect(wrong.webSocket).toBeNull()

    // Refused handshakes never reached the object: its id counter did not move.
    expect((await joinGuarded()).id).toBe(before.id + 1)
  })

  it('are the only source of locals: a client-sent x-durable-websocket-locals header never gets through', async () => {
    const forged = JSON.stringify({ user: 'mallory', admin: true, order: ['forged'] })
    const opened = await joinGuarded({ ...AUTHORIZED, 'x-durable-websocket-locals': forged })
    expect(opened.locals).toEqual(EXPECTED_LOCALS)
  })

  it('leave a forged locals header out even when they put nothing in locals themselves', async () => {
    // /fanout's middleware sets locals.role only from an x-role header, and its tags come from
    // locals.role: a forged role would show up as a tag.
    const forged = JSON.stringify({ role: 'admin' })
    const client = await connect('/fanout', { 'x-durable-websocket-locals': forged })
    // /fanout's serializer wraps every message as { encoding, value }.
    const { value } = await client.nextJson<{ value: { tags: string[] } }>()
    expect(value.tags).toEqual([])
    await leave(client)
  })
})

describe('locals on a route that forwards the client request to the object itself', () => {
  const FORGED = JSON.stringify({ user: 'admin' })

  it('refuse a forged locals header with a plain 400 before the object accepts, so open never sees it', async () => {
    const before = await joinForwarded()
    const forged = await upgrade('/forward-guarded', { 'x-durable-websocket-locals': FORGED })
    expect(forged.status).toBe(400)
    expect(forged.webSocket).toBeNull()
    expect(await forged.text()).toBe('Bad Request: unexpected locals header.\n')
    // Refused before acceptance: no id was spent on it.
    expect((await joinForwarded()).id).toBe(before.id + 1)
  })

  it('answer a malformed locals header with the same 400, never a throw or a 500', async () => {
    for (const value of ['{not json', '%E0%A4%A', 'null', '"admin"', 'x'.repeat(8_000)]) {
      const response = await upgrade('/forward-guarded', { 'x-durable-websocket-locals': value })
      expect(response.status).toBe(400)
      expect(await response.text()).toBe('Bad Request: unexpected locals header.\n')
    }
  })

  it('open with empty locals when the client sent no such header', async () => {
    expect((await joinForwarded()).locals).toEqual({})
  })

  it('cannot replay the ticket of an upgrade that came through the middleware', async () => {
    const tickets = guarded.room(env, 'forwarded')
    const ticket = await tickets.issueLocalsTicket({ user: 'alice' })
    const first = await connect('/forward-guarded', { 'x-durable-websocket-locals': ticket })
    expect((await first.nextJson<Opened>()).locals).toEqual({ user: 'alice' })
    await leave(first)
    const replayed = await upgrade('/forward-guarded', { 'x-durable-websocket-locals': ticket })
    expect(replayed.status).toBe(400)
  })
})

async function joinForwarded(): Promise<Opened> {
  const client = await connect('/forward-guarded')
  const opened = await client.nextJson<Opened>()
  await leave(client)
  return opened
}

describe('middleware()', () => {
  it('returns the [factory, options] pairs the module was made with, as a copy', () => {
    const pairs = guarded.middleware()
    expect(pairs).toEqual(guardedMiddleware)
    expect(pairs[0]?.[0]).toBe(tag)
    expect(pairs[1]).toEqual([requireToken, { token: 'letmein' }])
    pairs.pop()
    expect(guarded.middleware()).toHaveLength(3)
  })

  it('returns an empty list for a module made without middleware', () => {
    expect(websocket({ binding: 'NO_MIDDLEWARE' }).middleware()).toEqual([])
  })
})

describe('allowOrigins(options)', () => {
  it('lets a handshake from a listed origin through, in any letter case', async () => {
    for (const origin of ['https://app.example.com', 'HTTPS://APP.EXAMPLE.COM']) {
      const client = await connect('/origins', { Origin: origin })
      expect(await client.nextText()).toBe('welcome')
      await leave(client)
    }
  })

  it('lets a handshake from an origin that matches a RegExp through', async () => {
    const client = await connect('/origins', { Origin: 'https://pr-42.preview.example.com' })
    expect(await client.nextText()).toBe('welcome')
    await leave(client)
  })

  it('refuses a handshake from any other origin with 403', async () => {
    for (const origin of [
      'https://evil.example.com',
      'http://app.example.com',
      'https://app.example.com:8443',
      'https://app.example.com.evil.net',
      'https://a.b.preview.example.com',
      'null',
    ]) {
      const response = await upgrade('/origins', { Origin: origin })
      expect(response.status, origin).toBe(403)
      expect(response.webSocket).toBeNull()
    }
  })

  it('lets a handshake without Origin through by default', async () => {
    const client = await connect('/origins')
    expect(await client.nextText()).toBe('welcome')
    await leave(client)
  })

  it('refuses a handshake without Origin with 403 when allowMissing is false', async () => {
    expect((await upgrade('/strict-origins')).status).toBe(403)
    const client = await connect('/strict-origins', { Origin: 'https://app.example.com' })
    expect(await client.nextText()).toBe('welcome')
    await leave(client)
  })

  it.each<[string, unknown]>([
    ['an empty origin list', { origins: [] }],
    ['an origin with a path', { origins: ['https://x.com/path'] }],
    ['a string that is no URL', { origins: ['x.com'] }],
    ['a RegExp with the g flag', { origins: [/^https:\/\/x\.com$/g] }],
    ['a RegExp with the y flag', { origins: [/^https:\/\/x\.com$/y] }],
    ['a number among the origins', { origins: [42] }],
    ['origins that are not a list', { origins: 'https://x.com' }],
    ['a non-boolean allowMissing', { origins: ['https://x.com'], allowMissing: 'no' }],
    ['no options at all', undefined],
  ])('rejects %s with ERR_DWS_INVALID_OPTIONS when websocket() is called', (_label, options) => {
    let thrown: unknown
    try {
      websocket({ binding: 'NEVER_MADE', middleware: [[allowOrigins, options as AllowOriginsOptions]] })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(DurableWebSocketError)
    expect((thrown as DurableWebSocketError).code).toBe('ERR_DWS_INVALID_OPTIONS')
    expect((thrown as Error).message).toMatch(/^allowOrigins: /)
  })
})
