import { WebSocketObject, allowOrigins, use, websocket, type Connection } from '../../index.js'
import {
  MAX_NAME_LENGTH,
  MAX_TEXT_LENGTH,
  cleanName,
  parseClientMessage,
  type ServerMessage,
} from './protocol.js'

/**
 * The page's own origin under `wrangler dev` (any port, 127.0.0.1 or
 * localhost) and the deployed demo on workers.dev. Add your own domain here
 * when you deploy it elsewhere.
 */
const ORIGINS = [
  /^http:\/\/(?:127\.0\.0\.1|localhost)(?::\d{1,5})?$/,
  /^https:\/\/durable-websocket-demo\.[a-z0-9-]+\.workers\.dev$/,
]

/**
 * How long a session whose socket went away waits for its page. A reload or a network blip comes
 * back well within it, and nobody sees a leave; a closed tab (the browser's close says 1001, as a
 * reload's does) leaves the member list when it passes.
 */
const RESUME_WINDOW_MS = 15_000

/** The name an upgrade asks for with `?name=`, trimmed; undefined when it is blank or too long. */
function nameOf(request: Request): string | undefined {
  return cleanName(new URL(request.url).searchParams.get('name'))
}

/** Refuses, in the Worker, an upgrade without a usable name: the object never sees it. */
const requireName = () => (request: Request) =>
  nameOf(request) === undefined
    ? new Response(`Bad Request: ?name= must be 1 to ${String(MAX_NAME_LENGTH)} characters.\n`, {
        status: 400,
      })
    : undefined

export const chat = websocket({
  binding: 'CHAT',
  serializer: 'json',
  middleware: [use(allowOrigins, { origins: ORIGINS }), use(requireName)],
  resume: { window: RESUME_WINDOW_MS },
  // One member per name: a second tab under the same name is the same member with 2 connections,
  // and it leaves with its last one. A session that drops and resumes is no leave and no join.
  presence: {
    key: (request) => {
      const name = nameOf(request)
      // requireName let only a usable name through; a throw here would answer 500.
      if (name === undefined) throw new Error('an upgrade without a name reached the chat object')
      return name
    },
  },
})

type ChatConnection = Connection

function tell(conn: ChatConnection, message: ServerMessage): void {
  conn.send(message)
}

// A new session hears which room it is in and under which name. A resumed one (a reload, a
// dropped connection that came back) had that already: it gets only the replay of what it missed.
chat.add('open', (conn) => {
  if (conn.resumed) return
  tell(conn, { type: 'welcome', room: conn.room ?? 'default', name: conn.presence.key ?? '' })
})

chat.add('message', (conn, raw) => {
  const message = parseClientMessage(raw)
  const name = conn.presence.key
  if (message === undefined || name === undefined) {
    tell(conn, {
      type: 'refused',
      reason: `Send { type: "say", text } with 1 to ${String(MAX_TEXT_LENGTH)} characters.`,
    })
    return
  }
  conn.manager.broadcast({ type: 'said', name, text: message.text, at: Date.now() } satisfies ServerMessage)
})

/** One object per chat room. The script makes two modules, so the class names the one it serves. */
export class ChatRoom extends WebSocketObject {
  static override websocket = chat
}
