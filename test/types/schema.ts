// Typecheck only (`npm run typecheck`), never run: each @ts-expect-error line must stay a compile
// error, and everything else must compile. A line that starts compiling fails the typecheck.
import * as v from 'valibot'
import * as z from 'zod'
import { connect, type Client, type ClientFor } from '../../src/client/index.js'
import { websocket, type ServerIn, type ServerOut } from '../../src/index.js'

// validate: a Standard Schema sets In to its output type.

const Chat = z.object({ text: z.string().max(500) })

const zodChat = websocket({ binding: 'CHAT', serializer: 'json', validate: Chat })
zodChat.add('message', (conn, message) => {
  if (message instanceof ArrayBuffer) return
  const text: string = message.text
  // @ts-expect-error: the schema has no `name`.
  const _name: unknown = message.name
  conn.send({ text })
  // @ts-expect-error: without `Out` of its own, the module sends what it receives.
  conn.send({ txt: text })
})

// A transforming schema: handlers get its output, not what the client sent.
const Stamped = z.object({ at: z.string().transform((at) => new Date(at)) })
websocket({ binding: 'STAMPED', serializer: 'json', validate: Stamped }).add('message', (_conn, message) => {
  if (message instanceof ArrayBuffer) return
  const _at: Date = message.at
  // @ts-expect-error: the output's `at` is a Date, not the string that was sent.
  const _raw: string = message.at
})

const Move = v.object({ x: v.number(), y: v.number() })
websocket({ binding: 'GAME', serializer: 'json', validate: Move }).add('message', (_conn, message) => {
  if (message instanceof ArrayBuffer) return
  const _x: number = message.x
  // @ts-expect-error: a valibot schema narrows as much as a zod one.
  const _z: unknown = message.z
})

// @ts-expect-error: a schema whose output is not the module's In does not fit.
websocket<Cloudflare.Env, object, { id: number }>({ binding: 'X', serializer: 'json', validate: Chat })

// @ts-expect-error: validate takes a function or a schema, nothing else.
websocket({ binding: 'X', serializer: 'json', validate: { text: 'string' } })

// add('message', schema, handler): the handler gets that schema's output.

websocket({ binding: 'PER_EVENT', serializer: 'json' }).add('message', Move, (_conn, message) => {
  if (message instanceof ArrayBuffer) return
  const _y: number = message.y
  // @ts-expect-error: Move has no `text`.
  const _text: unknown = message.text
})

// @ts-expect-error: only `message` takes a schema.
websocket({ binding: 'PER_EVENT', serializer: 'json' }).add('open', Move, () => undefined)

// One definition file types both ends.

const messages = {
  in: z.object({ text: z.string(), at: z.string().transform((at) => new Date(at)) }),
  out: z.object({ from: z.number(), text: z.string() }),
}
type Messages = typeof messages

const server = websocket<Cloudflare.Env, object, ServerIn<Messages>, ServerOut<Messages>>({
  binding: 'CHAT',
  serializer: 'json',
  validate: messages.in,
})
server.add('message', (conn, message) => {
  if (message instanceof ArrayBuffer) return
  const _at: Date = message.at
  conn.send({ from: conn.id, text: message.text })
  // @ts-expect-error: the server sends what `out` says.
  conn.send({ text: message.text })
})

const client: ClientFor<Messages> = connect('wss://example.com/ws')
client.send({ text: 'hi', at: '2026-12-04T00:00:00Z' })
// @ts-expect-error: `at` is sent as the string the schema turns into a Date.
client.send({ text: 'hi', at: new Date() })
// @ts-expect-error: a wrong payload does not compile.
client.send({ txt: 'hi', at: '2026-12-04T00:00:00Z' })
client.on('message', (message) => {
  if (message instanceof ArrayBuffer) return
  const _from: number = message.from
  // @ts-expect-error: what the server sends has no `at`.
  const _at: unknown = message.at
})

// The same types, spelled out, for a client made elsewhere.
const _same: Client<ServerOut<Messages>, { text: string; at: string }> = client

// Without `out`, the server sends what it receives.
const _echo = { in: v.object({ text: v.string() }) }
const echoClient: ClientFor<typeof _echo> = connect('wss://example.com/echo')
echoClient.send({ text: 'hi' })
// @ts-expect-error: `text` is a string.
echoClient.send({ text: 1 })
