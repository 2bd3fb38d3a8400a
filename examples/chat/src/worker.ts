import { AutoRouter, error, json } from 'itty-router'
import { WebSocketObject, isRoomName, websocket } from 'durable-websocket'
import { MAX_NAME_LENGTH, MAX_TEXT_LENGTH, type Line } from './protocol.js'

const HISTORY_LINES = 20
const HISTORY_KEY = 'history'

/** The name the page asked for: the member key, so two tabs with one name are one member. */
function nameOf(request: Request): string {
  const asked = new URL(request.url).searchParams.get('name')?.trim() ?? ''
  return asked === '' ? 'guest' : asked.slice(0, MAX_NAME_LENGTH)
}

const ws = websocket<Env>({
  binding: 'CHAT',
  serializer: 'json',
  // The page pings every 20 s (client/chat.ts), so only a client that vanished goes quiet this long.
  idleTimeout: 60_000,
  // Who is in the room, one member per name: the page gets the list and every join and leave. A tab
  // whose connection drops and resumes its session is no leave and no join.
  presence: { key: nameOf },
})

ws.add('message', (conn, message) => {
  const text = (message as { text?: unknown }).text
  if (typeof text !== 'string' || text === '' || text.length > MAX_TEXT_LENGTH) return
  const line: Line = { type: 'said', name: conn.presence.key ?? 'guest', text }
  const kv = conn.manager.storage.kv
  kv.put(HISTORY_KEY, [...(kv.get<Line[]>(HISTORY_KEY) ?? []), line].slice(-HISTORY_LINES))
  conn.manager.broadcast(line)
})

/** One object per room: the sockets, who is in the room, and the room's latest lines in its storage. */
export class ChatRoom extends WebSocketObject<Env> {
  /** RPC, for the history route below. */
  history(): Line[] {
    return this.ctx.storage.kv.get<Line[]>(HISTORY_KEY) ?? []
  }
}

const app = AutoRouter()

app.get('/rooms/:room/history', async ({ params }, env: Env) => {
  // A name from the URL: check it, or ws.room() throws and the client gets a 500.
  if (!isRoomName(params.room)) return error(400, 'not a room name')
  return json(await ws.room<ChatRoom>(env, params.room).history())
})

// members() is an RPC method every WebSocketObject has once the module has presence.
app.get('/rooms/:room/members', async ({ params }, env: Env) => {
  if (!isRoomName(params.room)) return error(400, 'not a room name')
  return json(await ws.room<ChatRoom>(env, params.room).members())
})

// /chat/<room> upgrades go to the room's object; the page itself is served from public/.
export default ws.mount('/chat', app)
