import { AutoRouter, error, json } from 'itty-router'
import { WebSocketObject, isRoomName, websocket } from 'durable-websocket'
import { MAX_NAME_LENGTH, MAX_TEXT_LENGTH, type Line, type ToClient } from './protocol.js'

/** What each connection keeps between messages, through hibernation. */
interface Data {
  name: string
}

const HISTORY_LINES = 20
const HISTORY_KEY = 'history'

// The page pings every 20 s (client/chat.ts), so only a client that vanished goes quiet this long.
const ws = websocket<Env, Data>({ binding: 'CHAT', serializer: 'json', idleTimeout: 60_000 })

ws.add('open', (conn, request) => {
  // A session that resumed after a dropped connection is the same member, already announced and
  // never announced as gone: it keeps its name and tells nobody. Only a new one joins.
  if (!conn.resumed) {
    const asked = new URL(request.url).searchParams.get('name')?.trim() ?? ''
    conn.data.name = asked === '' ? `guest ${String(conn.id)}` : asked.slice(0, MAX_NAME_LENGTH)
  }
  const names = [...conn.manager.connections().values()].map((other) => other.data.name)
  conn.send({ type: 'welcome', id: conn.id, names } satisfies ToClient)
  if (!conn.resumed) {
    conn.manager.broadcast({ type: 'joined', name: conn.data.name } satisfies ToClient, { except: conn.id })
  }
})

ws.add('message', (conn, message) => {
  const text = (message as { text?: unknown }).text
  if (typeof text !== 'string' || text === '' || text.length > MAX_TEXT_LENGTH) return
  const line: Line = { type: 'said', name: conn.data.name, text }
  const kv = conn.manager.storage.kv
  kv.put(HISTORY_KEY, [...(kv.get<Line[]>(HISTORY_KEY) ?? []), line].slice(-HISTORY_LINES))
  conn.manager.broadcast(line)
})

ws.add('close', (conn) => {
  conn.manager.broadcast({ type: 'left', name: conn.data.name } satisfies ToClient)
})

/** One object per room: the sockets, and the room's latest lines in its storage. */
export class ChatRoom extends WebSocketObject<Env, Data> {
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

// /chat/<room> upgrades go to the room's object; the page itself is served from public/.
export default ws.mount('/chat', app)
