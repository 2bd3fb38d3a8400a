// Typecheck only (`npm run typecheck`), never run: each @ts-expect-error line must stay a compile
// error, and everything else must compile. A line that starts compiling fails the typecheck.
import {
  allowOrigins,
  use,
  websocket,
  type MiddlewareContext,
  type MiddlewareHandler,
  type ResumeOptions,
} from '../../src/index.js'

interface Env {
  SECRET: string
}

// validate: a type guard narrows what `message` handlers get.

interface ChatMessage {
  text: string
}

function isChatMessage(message: unknown): message is ChatMessage {
  return typeof message === 'object' && message !== null && typeof (message as ChatMessage).text === 'string'
}

const guarded = websocket({ binding: 'CHAT', serializer: 'json', validate: isChatMessage })
guarded.add('message', (conn, message) => {
  if (message instanceof ArrayBuffer) return
  const text: string = message.text
  // @ts-expect-error: a validated ChatMessage has no `name`.
  const _name: unknown = message.name
  conn.send({ text })
  // @ts-expect-error: without `Out` of its own, the module sends what it receives.
  conn.send({ txt: text })
})

const isShort = (message: unknown): boolean => JSON.stringify(message).length < 100
const unchecked = websocket({ binding: 'ECHO', serializer: 'json', validate: isShort })
unchecked.add('message', (_conn, message) => {
  const _stillUnknown: unknown = message
  // @ts-expect-error: a plain boolean check narrows nothing; the message stays unknown.
  const _text: unknown = message.text
})

// @ts-expect-error: the guard's type must be the In the module was given.
websocket<Env, object, { id: number }>({ binding: 'X', serializer: 'json', validate: isChatMessage })
websocket<Env, object, { id: number }>({
  binding: 'X',
  serializer: 'json',
  // @ts-expect-error: with an In of its own, validate must be a type guard that proves it.
  validate: isShort,
})

// Middleware options are checked against their factory through use().

websocket({ binding: 'A', middleware: [use(allowOrigins, { origins: ['https://example.com'] })] })
// @ts-expect-error: allowOrigins takes `origins`, not `origin`.
websocket({ binding: 'A', middleware: [use(allowOrigins, { origin: ['https://example.com'] })] })

const requireToken =
  (options: { token: string }): MiddlewareHandler<Env, { user?: string }> =>
  (request, { locals }) => {
    if (new URL(request.url).searchParams.get('token') !== options.token)
      return new Response('Unauthorized', { status: 401 })
    locals.user = 'admin'
    return undefined
  }

// @ts-expect-error: a misspelt option does not compile.
use(requireToken, { tokne: 'x' })
// @ts-expect-error: nor does a missing one.
use(requireToken)
// @ts-expect-error: nor one of the wrong type.
use(requireToken, { token: 42 })

// A factory whose options are optional may be used without them.
const optionalOptions =
  (_options?: { verbose?: boolean }): MiddlewareHandler<Env> =>
  () =>
    undefined
use(optionalOptions)
use(optionalOptions, { verbose: true })

// Locals: typed from the middleware through to `open`, as docs/api.md's Middleware example.

interface Data {
  user?: string
}

const typed = websocket<Env, Data, unknown, unknown, { user?: string }>({
  binding: 'WEBSOCKET',
  middleware: [use(requireToken, { token: 'secret' }), use(allowOrigins, { origins: ['https://a.example'] })],
})
typed.add('open', (conn, _request, locals) => {
  conn.data.user = locals.user ?? 'anonymous'
  // @ts-expect-error: the middleware puts no `role` in locals.
  const _role: unknown = locals.role
})

// With no type arguments, L comes from the middleware itself.
const inferred = websocket({ binding: 'WEBSOCKET', middleware: [use(requireToken, { token: 'secret' })] })
inferred.add('open', (_conn, _request, locals) => {
  const _user: string | undefined = locals.user
})

// The docs' example as written there, with the context typed in place.
const requireTokenInline =
  (options: { token: string }) =>
  (request: Request, { locals }: MiddlewareContext<Env, { user?: string }>) => {
    if (new URL(request.url).searchParams.get('token') !== options.token)
      return new Response('Unauthorized', { status: 401 })
    locals.user = 'admin'
    return undefined
  }
const documented = websocket<Env, Data, unknown, unknown, { user?: string }>({
  binding: 'WEBSOCKET',
  middleware: [use(requireTokenInline, { token: 'secret' })],
})
documented.add('open', (conn, _request, locals) => {
  conn.data.user = locals.user ?? 'anonymous'
})

// Untyped locals are unknown: Data cannot take them unchecked.
websocket<Env, Data>({ binding: 'WEBSOCKET' }).add('open', (conn, _request, locals) => {
  // @ts-expect-error: Locals is Record<string, unknown> unless the module names its own.
  conn.data.user = locals.user
})

// A middleware that writes other locals than the module's does not fit it.
const setsTenant =
  (_options: { header: string }): MiddlewareHandler<Env, { tenant: number }> =>
  () =>
    undefined
websocket<Env, Data, unknown, unknown, { user?: string }>({
  binding: 'WEBSOCKET',
  // @ts-expect-error: its handler expects locals with a `tenant`.
  middleware: [use(setsTenant, { header: 'x-tenant' })],
})

// resume: its options type is exported, so an app can build them apart from the call.

const shortSessions: ResumeOptions = { window: 30_000 }
websocket({ binding: 'CHAT', resume: shortSessions })
// @ts-expect-error: a window is a number of milliseconds, not a string.
const _badWindow: ResumeOptions = { window: '30s' }

// resume.owner reads the locals the middleware set, typed as the module's locals.
websocket<Env, Record<string, never>, unknown, unknown, { user: string }>({
  binding: 'CHAT',
  resume: { owner: (_request, locals) => locals.user, maxAge: 3_600_000 },
})
websocket<Env, Record<string, never>, unknown, unknown, { user: string }>({
  binding: 'CHAT',
  // @ts-expect-error: an owner is a string, not a number.
  resume: { owner: (_request, locals) => locals.user.length },
})

// Presence: the key and meta functions see the middleware's locals; members are read back typed.
const present = websocket({
  binding: 'WEBSOCKET',
  middleware: [use(requireToken, { token: 'secret' })],
  presence: {
    key: (_request, locals) => locals.user ?? 'anonymous',
    meta: (_request, locals) => ({ name: locals.user ?? 'anonymous' }),
    maxMembers: 100,
  },
})
present.add('message', (conn) => {
  const keys: string[] = conn.presence.list().map((member) => member.key)
  const count: number =
    conn.manager.presence.count() + keys.length + (conn.presence.get('k')?.connections ?? 0)
  const mine: string | undefined = conn.presence.key
  const changed: boolean = conn.presence.update({ away: true, count, mine })
  // @ts-expect-error: metadata is an object, not a string.
  conn.presence.update('away')
  return changed
})
websocket({
  binding: 'WEBSOCKET',
  // @ts-expect-error: presence needs a key function.
  presence: { maxMembers: 5 },
})

// A sharded room's handlers: the room-wide answers are promises; the leaf's own stay synchronous.
const sharded = websocket({ binding: 'WEBSOCKET', shards: { count: 4, socketsPerShard: 1_000 } })
sharded.add('message', async (conn) => {
  const room: number = await conn.manager.roomCount()
  const ids: number[] = await conn.manager.roomIds()
  const own: number = conn.manager.count() + conn.manager.ids().length
  // @ts-expect-error: the room's count needs calls to the other leaves, so it is a promise.
  const unawaited: number = conn.manager.roomCount()
  return room + ids.length + own + unawaited
})
