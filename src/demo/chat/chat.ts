import { WebSocketObject, allowOrigins, use, websocket, type Connection } from '../../index.js'
import { parseClientMessage, type Member, type ServerMessage } from './protocol.js'

/** A connection's name lives in its `data`, so it survives the object's hibernation. */
export interface ChatData {
  name?: string
}

/**
 * The page's own origin under `wrangler dev` (any port, 127.0.0.1 or
 * localhost) and the deployed demo on workers.dev. Add your own domain here
 * when you deploy it elsewhere.
 */
const ORIGINS = [
  /^http:\/\/(?:127\.0\.0\.1|localhost)(?::\d{1,5})?$/,
  /^https:\/\/durable-websocket-demo\.[a-z0-9-]+\.workers\.dev$/,
]

export const chat = websocket<unknown, ChatData>({
  binding: 'CHAT',
  serializer: 'json',
  middleware: [use(allowOrigins, { origins: ORIGINS })],
})

type ChatConnection = Connection<unknown, ChatData>

function memberOf(conn: ChatConnection): Member | undefined {
  const name = conn.data.name
  return name === undefined ? undefined : { id: conn.id, name }
}

function tell(conn: ChatConnection, message: ServerMessage): void {
  conn.send(message)
}

/**
 * A first join names the member and tells the others. A join from a member
 * already in the room (a reloaded page whose session resumed) only answers
 * with the member list again, under the name it joined with.
 */
function join(conn: ChatConnection, name: string): void {
  const again = conn.data.name !== undefined
  conn.data.name ??= name
  const members = [...conn.manager.connections().values()]
    .map(memberOf)
    .filter((member) => member !== undefined)
  tell(conn, { type: 'welcome', you: conn.id, room: conn.room ?? 'default', members })
  if (again) return
  conn.manager.broadcast({ type: 'joined', member: { id: conn.id, name } } satisfies ServerMessage, {
    except: conn.id,
  })
}

// A resumed session is the same member: the others saw no leave, so they get no join either. Pages
// that joined while it was away did not list it, though; `back` lets them add it without a note.
chat.add('open', (conn) => {
  const member = memberOf(conn)
  if (conn.resumed && member !== undefined) {
    conn.manager.broadcast({ type: 'back', member } satisfies ServerMessage, { except: conn.id })
  }
})

chat.add('message', (conn, raw) => {
  const message = parseClientMessage(raw)
  if (message === undefined) {
    tell(conn, { type: 'refused', reason: 'Send { type: "join", name } or { type: "say", text }.' })
  } else if (message.type === 'join') {
    join(conn, message.name)
  } else {
    const from = memberOf(conn)
    if (from === undefined) {
      tell(conn, { type: 'refused', reason: 'Join with a name first.' })
    } else {
      conn.manager.broadcast({
        type: 'said',
        from,
        text: message.text,
        at: Date.now(),
      } satisfies ServerMessage)
    }
  }
})

// With sessions this runs once per session: on Leave (a clean close), or when a dropped page did
// not come back within the resume window; a blip that resumed never gets here.
chat.add('close', (conn) => {
  const member = memberOf(conn)
  // The closed connection is already out of the room, so this reaches only the others.
  if (member !== undefined) conn.manager.broadcast({ type: 'left', member } satisfies ServerMessage)
})

/** One object per chat room. The script makes two modules, so the class names the one it serves. */
export class ChatRoom extends WebSocketObject<unknown, ChatData> {
  static override websocket = chat
}
