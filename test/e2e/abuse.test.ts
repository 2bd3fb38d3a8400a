import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { within } from './fixtureClient.js'
import { MAX_MESSAGE_BYTES } from './fixtures/abuse/limits.js'
import type { SeenClose } from './fixtures/abuse/protocol.js'
import { Opcode, frame, openRaw } from './rawSocket.js'
import { useDevServer } from './useDevServer.js'

const dev = useDevServer({ config: resolve(import.meta.dirname, 'fixtures/abuse/wrangler.toml') })
const WAIT_MS = 15_000

interface Outcome {
  replies: string[]
  code: number
  reason: string
}

/** Sends `bytes` as one text frame, as they are (`ws` does not check them), and closes after the first reply. */
function sendText(path: string, bytes: Buffer): Promise<Outcome> {
  return within(
    new Promise((resolveOutcome) => {
      const client = new WebSocket(`${dev().wsOrigin}${path}`)
      const replies: string[] = []
      client.on('open', () => client.send(bytes, { binary: false }))
      client.on('message', (data: Buffer) => {
        replies.push(data.toString())
        client.close(1000)
      })
      client.on('error', () => undefined)
      client.on('close', (code: number, reason: Buffer) =>
        resolveOutcome({ replies, code, reason: reason.toString() }),
      )
    }),
    `the close of a client of ${path}`,
    WAIT_MS,
  )
}

describe('a text frame that is not valid UTF-8, under maxMessageBytes', () => {
  // Each bad byte arrives as U+FFFD: one UTF-16 unit, three bytes of UTF-8.
  const bad = (count: number): Buffer => Buffer.alloc(count, 0xff)

  it('is not taken for a message over the limit: without a serializer the handler gets it, U+FFFD for each bad byte', async () => {
    const outcome = await sendText('/ws/utf8', bad(MAX_MESSAGE_BYTES / 2))
    expect(outcome.replies).toEqual([String(MAX_MESSAGE_BYTES / 2)])
    expect(outcome.code).toBe(1000)
  })

  it('is closed with 1007 "Malformed message" on a JSON endpoint, not 1009', async () => {
    const outcome = await sendText('/json/utf8', bad(MAX_MESSAGE_BYTES / 2))
    expect(outcome).toEqual({ replies: [], code: 1007, reason: 'Malformed message' })
  })

  it('is handled at exactly the limit, and closed with 1009 one byte over it', async () => {
    expect((await sendText('/ws/utf8-edge', bad(MAX_MESSAGE_BYTES))).replies).toEqual([
      String(MAX_MESSAGE_BYTES),
    ])
    expect(await sendText('/ws/utf8-edge', bad(MAX_MESSAGE_BYTES + 1))).toEqual({
      replies: [],
      code: 1009,
      reason: 'Message too big',
    })
  })
})

async function closesOf(room: string, count: number): Promise<SeenClose[]> {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const response = await fetch(`${dev().origin}/closes/${room}`)
    const closes = (await response.json()) as SeenClose[]
    if (closes.length >= count || Date.now() > deadline) return closes
    await new Promise((resolveLater) => setTimeout(resolveLater, 50))
  }
}

/** A close frame with `code` and `reason`, written by hand: a library would refuse to send most of these. */
function closeWith(code: number, reason = ''): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason))
  payload.writeUInt16BE(code, 0)
  payload.write(reason, 2)
  return frame(Opcode.CLOSE, payload)
}

describe("a client's close frame", () => {
  it.each([0, 999, 1004, 1005, 1006, 1015, 2999, 5000])(
    'with code %i, which no endpoint may send, reaches close as 1005 without a reason, so it cannot pass for a lost connection',
    async (code) => {
      const room = `close-${String(code)}`
      const raw = await openRaw(dev().origin, `/ws/${room}`)
      raw.socket.write(closeWith(code, 'faked'))
      expect(await closesOf(room, 1)).toEqual([{ code: 1005, reason: '' }])
      raw.socket.destroy()
    },
  )

  it('with a reason of 1,000 bytes reaches close with the code and the reason cut to 123 bytes, at a character boundary', async () => {
    const room = 'close-long-reason'
    const raw = await openRaw(dev().origin, `/ws/${room}`)
    // 'é' is two bytes: 123 bytes hold 61 of them and no half of the 62nd.
    raw.socket.write(closeWith(4000, 'é'.repeat(500)))
    expect(await closesOf(room, 1)).toEqual([{ code: 4000, reason: 'é'.repeat(61) }])
    raw.socket.destroy()
  })

  it('with a valid code and reason reaches close as it was sent', async () => {
    const room = 'close-valid'
    const raw = await openRaw(dev().origin, `/ws/${room}`)
    raw.socket.write(closeWith(4321, 'bye'))
    expect(await closesOf(room, 1)).toEqual([{ code: 4321, reason: 'bye' }])
    raw.socket.destroy()
  })
})
