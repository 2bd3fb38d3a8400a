import type { IncomingMessage } from 'node:http'
import { resolve } from 'node:path'
import { constants, deflateRawSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { within } from './fixtureClient.js'
import { MAX_MESSAGE_BYTES } from './fixtures/abuse/limits.js'
import { Opcode, frame, openRaw, type RawSocket } from './rawSocket.js'
import { useDevServer } from './useDevServer.js'

const dev = useDevServer({ config: resolve(import.meta.dirname, 'fixtures/abuse/wrangler.toml') })
const WAIT_MS = 15_000

interface Outcome {
  /** Sec-WebSocket-Extensions of the 101, if it had one. */
  extensions: string | undefined
  /** What the handler answered: the size of what reached it. */
  replies: string[]
  code: number
}

/** A `ws` client that offers permessage-deflate sends `payload` once (compressed if agreed) and waits for the close. */
function sendOnce(payload: string): Promise<Outcome> {
  return within(
    new Promise((resolveOutcome) => {
      const client = new WebSocket(`${dev().wsOrigin}/ws`, { perMessageDeflate: { threshold: 0 } })
      let extensions: string | undefined
      const replies: string[] = []
      client.on('upgrade', (response: IncomingMessage) => {
        extensions = response.headers['sec-websocket-extensions']
      })
      client.on('open', () => client.send(payload, { compress: true }))
      client.on('message', (data: Buffer) => {
        replies.push(data.toString())
        client.close(1000)
      })
      client.on('error', () => undefined)
      client.on('close', (code: number) => resolveOutcome({ extensions, replies, code }))
    }),
    'the close of a client that offered permessage-deflate',
    WAIT_MS,
  )
}

/** `bytes` of one letter, deflated as RFC 7692 puts it on the wire (no trailing 00 00 ff ff). */
function deflated(bytes: number): Buffer {
  const flushed = deflateRawSync(Buffer.alloc(bytes, 0x61), { finishFlush: constants.Z_SYNC_FLUSH })
  return flushed.subarray(0, flushed.length - 4)
}

/** Resolves once the server's close frame has arrived; the TCP end may come seconds later. */
function closeFrame(raw: RawSocket): Promise<void> {
  return new Promise((resolveClose) => {
    const check = (): void => {
      if (!raw.frames().some((f) => f.opcode === Opcode.CLOSE)) return
      raw.socket.off('data', check)
      resolveClose()
    }
    raw.socket.on('data', check)
    check()
  })
}

describe('a client that offers permessage-deflate', () => {
  it('gets a 101 without Sec-WebSocket-Extensions, and its messages are handled uncompressed', async () => {
    const outcome = await sendOnce('hello')
    expect(outcome.extensions).toBeUndefined()
    expect(outcome.replies).toEqual(['5'])
    expect(outcome.code).toBe(1000)
  })

  it('is closed with 1009 for a message over maxMessageBytes, which it had to send in full', async () => {
    const outcome = await sendOnce('a'.repeat(MAX_MESSAGE_BYTES * 16))
    expect(outcome.extensions).toBeUndefined()
    expect(outcome.replies).toEqual([])
    expect(outcome.code).toBe(1009)
  })

  it('is failed with 1002 by the runtime for a compressed frame that would inflate past the limit, which nothing inflates', async () => {
    const raw = await openRaw(dev().origin, '/ws', ['Sec-WebSocket-Extensions: permessage-deflate'])
    expect(raw.head).not.toMatch(/^sec-websocket-extensions:/im)
    const bomb = deflated(MAX_MESSAGE_BYTES * 64)
    expect(bomb.length).toBeLessThan(MAX_MESSAGE_BYTES / 8)
    raw.socket.write(frame(Opcode.BINARY, bomb, { rsv1: true }))
    await within(closeFrame(raw), 'the close frame of the runtime', WAIT_MS)
    raw.socket.destroy()
    const frames = raw.frames()
    // No reply: the handler would have answered with the size it received.
    expect(frames.filter((f) => f.opcode !== Opcode.CLOSE)).toEqual([])
    const close = frames.find((f) => f.opcode === Opcode.CLOSE)
    expect(close?.payload.readUInt16BE(0)).toBe(1002)
  })
})
