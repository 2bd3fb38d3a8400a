import { describe, expect, it } from 'vitest'
import {
  DurableWebSocketError,
  InvalidHandlerError,
  isDurableWebSocketError,
  websocket,
} from '../../src/index.js'
import { EVENT_NAMES } from '../../src/core/events.js'
import { replaced } from './fixture/endpoints/replaced.js'
import { connect } from './client.js'
import { thrownBy } from './thrownBy.js'

describe('add(event, handler)', () => {
  it('accepts a function for each of open, message, request, malformed_message, suspend, close and error, and returns the module', () => {
    const module = websocket({ binding: 'ADD_TEST' })
    expect(EVENT_NAMES).toEqual([
      'open',
      'message',
      'request',
      'malformed_message',
      'suspend',
      'close',
      'error',
    ])
    expect(module.add('open', () => undefined)).toBe(module)
    expect(module.add('message', () => undefined)).toBe(module)
    expect(module.add('request', () => undefined)).toBe(module)
    expect(module.add('malformed_message', () => undefined)).toBe(module)
    expect(module.add('suspend', () => undefined)).toBe(module)
    expect(module.add('close', () => undefined)).toBe(module)
    expect(module.add('error', () => new Response(null, { status: 400 }))).toBe(module)
  })

  it('throws a TypeError (InvalidHandlerError) that names the event when the handler is not a function', () => {
    const module = websocket({ binding: 'ADD_TEST' })
    for (const event of EVENT_NAMES) {
      for (const handler of ['conn.send', null, undefined, { handleEvent: () => undefined }]) {
        const error = thrownBy(() => module.add(event, handler as never))
        expect(error).toBeInstanceOf(TypeError)
        expect(error).toBeInstanceOf(InvalidHandlerError)
        expect((error as InvalidHandlerError).code).toBe('ERR_DWS_INVALID_HANDLER')
        expect((error as Error).message).toContain(`"${event}"`)
        expect(isDurableWebSocketError(error)).toBe(true)
      }
    }
  })

  it('throws ERR_DWS_UNKNOWN_EVENT for an unknown event, naming it and listing the known ones', () => {
    const module = websocket({ binding: 'ADD_TEST' })
    for (const event of ['mesage', 'connect', 'Message', '']) {
      const error = thrownBy(() => module.add(event as 'message', () => undefined))
      expect(error).toBeInstanceOf(DurableWebSocketError)
      expect((error as DurableWebSocketError).code).toBe('ERR_DWS_UNKNOWN_EVENT')
      expect((error as Error).message).toContain(`"${event}"`)
      for (const known of EVENT_NAMES) expect((error as Error).message).toContain(known)
    }
  })

  it('replaces the earlier handler when the same event is added again', async () => {
    const client = await connect('/replaced')
    expect(await client.ask('hello')).toBe('second handler')

    replaced.add('message', (conn, message) => conn.send(`third handler got ${String(message)}`))
    expect(await client.ask('hello again')).toBe('third handler got hello again')
    client.close()
  })
})
