import { WebSocketObject, allowOrigins, websocket, type Connection } from '../../index.js'
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
  middleware: [[allowOrigins, { origins: ORIGINS }]],
})

type ChatConnection = Connection<unknown, ChatData>

function memberOf(conn: ChatConnection): Member | undefined {
  const name = conn.data.name
  return name === undefined ? undefined : { id: conn.id, name }
}

function tell(conn: ChatConnection, message: ServerMessage): void {
  conn.send(message)
}

function join(conn: ChatConnection, name: string): void {
  if (conn.data.name !== undefined) return tell(conn, { type: 'refused', reason: 'You have joined already.' })
  conn.data.name = name
  const members = [...conn.manager.connections().values()]
    .map(memberOf)
    .filter((member) => member !== undefined)
  tell(conn, { type: 'welcome', you: conn.id, room: conn.room ?? 'default', members })
  conn.manager.broadcast({ type: 'joined', member: { id: conn.id, name } } satisfies ServerMessage, {
    except: conn.id,
  })
}

chat.add('message', (conn, raw) => {
  const message = parseClientMessage(raw)
  if (message === undefined) {
    return tell(conn, { type: 'refused', reason: 'Send { type: "join", name } or { type: "say", text }.' })
  }
  if (message.type === 'join') return join(conn, message.name)
  const from = memberOf(conn)
  if (from === undefined) return tell(conn, { type: 'refused', reason: 'Join with a name first.' })
  conn.manager.broadcast({ type: 'said', from, text: message.text, at: Date.now() } satisfies ServerMessage)
})

chat.add('close', (conn) => {
  const member = memberOf(conn)
  // The closed connection is already out of the room, so this reaches only the others.
  if (member !== undefined) conn.manager.broadcast({ type: 'left', member } satisfies ServerMessage)
})

/** One object per chat room. The script makes two modules, so the class names the one it serves. */
export class ChatRoom extends WebSocketObject<unknown, ChatData> {
  static override websocket = chat
}
