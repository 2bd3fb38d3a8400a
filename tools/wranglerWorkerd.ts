import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import NodeWs from 'ws'

// `wrangler dev` runs two workerd: a proxy on the public port, which relays every frame, and the
// runtime that runs the Worker and its objects. Bench and tests that open thousands of sockets
// dial the runtime's own port instead: there a socket costs two descriptors in one process, where
// through the proxy it costs about four more in the proxy's. Read from /proc, so Linux only.

/** One process, with its command line. */
export interface ProcessInfo {
  pid: number
  args: string[]
}

/** The fields of /proc/<pid>/stat after the command name, which may itself hold spaces. */
export function statFields(pid: number): string[] {
  const text = readFileSync(`/proc/${String(pid)}/stat`, 'utf8')
  return text.slice(text.lastIndexOf(')') + 2).split(' ')
}

/** The process group `pid` belongs to (field 5 of proc(5)). */
export function processGroupOf(pid: number): number {
  return Number(statFields(pid)[2])
}

/** Every live process whose process group is `pgid`, with its command line. */
export function processGroup(pgid: number): ProcessInfo[] {
  const members: ProcessInfo[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    try {
      if (processGroupOf(pid) !== pgid) continue
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean)
      members.push({ pid, args })
    } catch {
      // gone between the listing and the read
    }
  }
  return members
}

/** The TCP ports `pid` listens on (IPv4 and IPv6), from its socket inodes and /proc/net/tcp*. */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${String(pid)}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${String(pid)}/fd/${fd}`)
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
      if (inode !== undefined) inodes.add(inode)
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue
    }
    for (const row of text.split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/)
      // local_address is col 1 (addr:port in hex), st is col 3 (0A = LISTEN), inode is col 9.
      if (cols[3] !== '0A' || cols[9] === undefined || !inodes.has(cols[9])) continue
      const port = cols[1]?.split(':')[1]
      if (port !== undefined) ports.push(parseInt(port, 16))
    }
  }
  return ports
}

/**
 * The two workerd of the `wrangler dev` whose process group is `pgid`. Only
 * the runtime is given the inspector's address, which tells them apart.
 */
export async function findWorkerd(pgid: number): Promise<{ runtime: ProcessInfo; proxy: ProcessInfo }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const workerd = processGroup(pgid).filter((p) => p.args[0]?.endsWith('/workerd') === true)
    const runtime = workerd.filter((p) => p.args.some((arg) => arg.startsWith('--inspector-addr')))
    const proxy = workerd.filter((p) => !runtime.includes(p))
    if (runtime.length === 1 && proxy.length === 1 && runtime[0] && proxy[0]) {
      return { runtime: runtime[0], proxy: proxy[0] }
    }
    await sleep(100)
  }
  throw new Error(
    `could not tell wrangler's two workerd processes apart in group ${String(pgid)}: ${JSON.stringify(processGroup(pgid))}`,
  )
}

/**
 * The runtime's own HTTP port, as `http://127.0.0.1:<port>`: the one of its
 * listening ports for which `answers(origin)` holds. Its others are the
 * inspector and a debug port; `answers` is asked of each with a request only
 * the Worker can answer the expected way, and a port that fails it is not it.
 * The port is a new random one at every start of the runtime.
 */
export async function runtimeOrigin(
  runtimePid: number,
  answers: (origin: string) => Promise<boolean>,
): Promise<string> {
  const ports = listeningPorts(runtimePid)
  for (const port of ports) {
    const origin = `http://127.0.0.1:${String(port)}`
    try {
      if (await answers(origin)) return origin
    } catch {
      // not the Worker's port: the request failed or timed out
    }
  }
  throw new Error(`none of the runtime workerd's ports (${ports.join(', ')}) serves the Worker`)
}

/** A path no Worker of ours routes: every port that runs the Worker answers it the same way. */
const PROBE_PATH = '/durable-websocket-no-such-route'

/**
 * A check for {@link runtimeOrigin}: whether a port answers a path no route
 * serves exactly as the public port does (status and body). Only the
 * Worker's own port does; the inspector and the debug port answer otherwise.
 */
export async function answersLike(publicOrigin: string): Promise<(origin: string) => Promise<boolean>> {
  const answer = async (origin: string): Promise<string> => {
    const response = await fetch(`${origin}${PROBE_PATH}`, { signal: AbortSignal.timeout(2_000) })
    return `${String(response.status)} ${await response.text()}`
  }
  const expected = await answer(publicOrigin)
  return async (origin) => (await answer(origin)) === expected
}

/**
 * A `WebSocket` for the package's client (its `WebSocket` option) that
 * dials the host of `origin()`, the runtime's own port, a new one after
 * every restart, whatever host the client was given: that URL stays the
 * client's session key. `made` hears of every socket it makes.
 */
export function dialingRuntime(
  origin: () => string,
  made?: (socket: NodeWs) => void,
): new (url: string, protocols?: string | string[]) => NodeWs {
  return class extends NodeWs {
    constructor(url: string, protocols?: string | string[]) {
      const dialled = new URL(url)
      dialled.host = new URL(origin()).host
      super(dialled, protocols)
      made?.(this)
    }
  }
}
