import WebSocket from 'ws'
import { listeningPorts, processGroup, processGroupOf } from '../../tools/wranglerWorkerd.ts'

interface Target {
  title: string
  webSocketDebuggerUrl: string
}

interface Reply {
  id?: number
  result?: unknown
  error?: { message: string }
}

/** A DevTools protocol session: `call` sends one command and resolves with its result. */
export interface Inspector {
  call<T>(method: string, params?: Record<string, unknown>): Promise<T>
  close(): void
}

/**
 * wrangler dev's inspector proxy, found among the ports of the dev server's
 * process group: the one that answers `/json` with a list of targets. It
 * relays to the runtime workerd's own inspector, which accepts one session
 * and wrangler already holds it.
 */
async function findTargets(runtimePid: number): Promise<Target[]> {
  const members = processGroup(processGroupOf(runtimePid))
  for (const port of members.flatMap((member) => listeningPorts(member.pid))) {
    try {
      const response = await fetch(`http://127.0.0.1:${String(port)}/json`, {
        signal: AbortSignal.timeout(2_000),
      })
      const body: unknown = await response.json()
      if (Array.isArray(body) && body.length > 0) return body as Target[]
    } catch {
      // not the inspector: the public port, the runtime's, or wrangler's control port
    }
  }
  throw new Error(`no inspector answered /json in the process group of ${String(runtimePid)}`)
}

/** Opens a session on the user worker of the dev server whose runtime workerd is `runtimePid`. */
export async function openInspector(runtimePid: number): Promise<Inspector> {
  const [target] = await findTargets(runtimePid)
  if (target === undefined) throw new Error('the inspector lists no worker')
  const socket = new WebSocket(target.webSocketDebuggerUrl)
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  socket.on('message', (data: Buffer) => {
    const reply = JSON.parse(data.toString('utf8')) as Reply
    const waiter = reply.id === undefined ? undefined : pending.get(reply.id)
    if (waiter === undefined || reply.id === undefined) return
    pending.delete(reply.id)
    if (reply.error !== undefined) waiter.reject(new Error(reply.error.message))
    else waiter.resolve(reply.result)
  })
  let lastId = 0
  return {
    call: <T>(method: string, params: Record<string, unknown> = {}) =>
      new Promise<T>((resolve, reject) => {
        const id = ++lastId
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
        socket.send(JSON.stringify({ id, method, params }))
      }),
    close: () => socket.close(),
  }
}
