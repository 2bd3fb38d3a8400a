// Measures what a permessage-deflate bomb costs the runtime: 10 clients each send one frame of
// ~31 KB on the wire that inflates to 31 MiB, to the fixture of test/e2e/deflate.test.ts.
// Prints the negotiated extensions and the RSS growth of both workerd processes, through wrangler's
// proxy and on the runtime's own port. Figures only; nothing is asserted.
// Run: node bench/deflateBomb.ts
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { deflateRawSync } from 'node:zlib'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { spawnProcessGroup } from '../tools/processGroup.ts'
import { listeningPorts, processGroup, readRssBytes } from './lib/proc.ts'

const REPO_ROOT = resolve(import.meta.dirname, '..')
const CONFIG = process.env.BOMB_CONFIG ?? join(REPO_ROOT, 'test/e2e/fixtures/abuse/wrangler.toml')
const BOMB_BYTES = 31 * 1024 * 1024
const BOMBS = 10
const MiB = 1024 * 1024

interface Sent {
  extensions: string | undefined
  /** The close code the server sent, if it sent a close frame. */
  code: number | undefined
}

/**
 * What an attacker sends: a handshake that offers permessage-deflate, then the
 * deflated bytes in one frame with RSV1 set, whether or not the server agreed.
 * Without the extension the receiver must fail the connection, inflating nothing.
 */
function bomb(origin: string, wire: Buffer): Promise<Sent> {
  const { hostname, port } = new URL(origin)
  const socket = connect(Number(port), hostname)
  let received = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    const first = received.length === 0
    received = Buffer.concat([received, chunk])
    if (!first) return
    const mask = randomBytes(4)
    const header = Buffer.from([0x80 | 0x40 | 0x2, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0])
    header.writeUInt32BE(wire.length, 6)
    socket.write(Buffer.concat([header, mask, Buffer.from(wire.map((byte, i) => byte ^ (mask[i % 4] ?? 0)))]))
  })
  socket.on('error', () => undefined)
  socket.write(
    `GET /ws HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
      'Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n',
  )
  return new Promise((done) => {
    const timer = setTimeout(() => socket.destroy(), 20_000)
    socket.once('close', () => {
      clearTimeout(timer)
      const headEnd = received.indexOf('\r\n\r\n')
      const head = received.toString('latin1', 0, headEnd)
      const extensions = /^sec-websocket-extensions: (.*)$/im.exec(head)?.[1]
      const code = closeCode(received.subarray(headEnd + 4))
      done({ extensions, code })
    })
  })
}

/** The status code of the first close frame among the server's (unmasked) frames. */
function closeCode(frames: Buffer): number | undefined {
  let at = 0
  while (at + 2 <= frames.length) {
    const opcode = (frames[at] ?? 0) & 0x0f
    let length = (frames[at + 1] ?? 0) & 0x7f
    let start = at + 2
    if (length === 126) {
      length = frames.readUInt16BE(start)
      start += 2
    } else if (length === 127) {
      length = Number(frames.readBigUInt64BE(start))
      start += 8
    }
    if (opcode === 0x8 && length >= 2) return frames.readUInt16BE(start)
    at = start + length
  }
  return undefined
}

async function measure(label: string, origin: string, pids: Record<string, number>): Promise<void> {
  // The trailing 00 00 ff ff of a sync flush is left off on the wire (RFC 7692 §7.2.1).
  const deflated = deflateRawSync(Buffer.alloc(BOMB_BYTES, 0x61), { finishFlush: 2 })
  const wire = deflated.subarray(0, deflated.length - 4)
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, readRssBytes(pid)]))
  const peak = { ...before }
  const sampler = setInterval(() => {
    for (const [name, pid] of Object.entries(pids)) peak[name] = Math.max(peak[name] ?? 0, readRssBytes(pid))
  }, 20)
  const results = await Promise.all(Array.from({ length: BOMBS }, () => bomb(origin, wire)))
  await new Promise((r) => setTimeout(r, 500))
  clearInterval(sampler)
  const codes = [...new Set(results.map((r) => String(r.code ?? 'none')))].join(',')
  const extensions = [...new Set(results.map((r) => r.extensions ?? '(none)'))].join(' | ')
  console.log(
    `${label}: ${String(BOMBS)} frames of ${String(wire.length)} bytes (${String(BOMB_BYTES / MiB)} MiB inflated); 101 extensions ${extensions}; close codes ${codes}`,
  )
  for (const [name, pid] of Object.entries(pids)) {
    const grew = ((peak[name] ?? 0) - (before[name] ?? 0)) / MiB
    console.log(
      `  ${name} workerd RSS ${((before[name] ?? 0) / MiB).toFixed(0)} MiB -> peak ${((peak[name] ?? 0) / MiB).toFixed(0)} MiB (+${grew.toFixed(0)} MiB), now ${(readRssBytes(pid) / MiB).toFixed(0)} MiB`,
    )
  }
}

const scratch = await mkdtemp(join(tmpdir(), 'durable-websocket-bomb-'))
const group = spawnProcessGroup(
  process.execPath,
  [
    join(REPO_ROOT, 'node_modules/wrangler/bin/wrangler.js'),
    'dev',
    '--config',
    CONFIG,
    '--ip',
    '127.0.0.1',
    '--port',
    '0',
    '--inspector-port',
    '0',
    '--persist-to',
    join(scratch, 'state'),
    '--show-interactive-dev-session=false',
  ],
  {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      XDG_CONFIG_HOME: join(scratch, 'config'),
      X_LOCAL_OBSERVABILITY: 'false',
      CI: 'true',
    },
    name: 'wrangler dev',
  },
)
try {
  const port = await group.waitFor(/Ready on http:\/\/127\.0\.0\.1:(\d+)/, 60_000)
  await new Promise((r) => setTimeout(r, 1000))
  const workerd = processGroup(group.pgid).filter((p) => p.args[0]?.endsWith('/workerd') === true)
  const runtime = workerd.find((p) => p.args.some((arg) => arg.startsWith('--inspector-addr')))
  const proxy = workerd.find((p) => p !== runtime)
  if (runtime === undefined || proxy === undefined) throw new Error('could not find both workerd processes')
  const pids = { runtime: runtime.pid, proxy: proxy.pid }
  await measure(`through wrangler's proxy (port ${port})`, `http://127.0.0.1:${port}`, pids)
  for (const direct of listeningPorts(runtime.pid)) {
    const response = await fetch(`http://127.0.0.1:${String(direct)}/ws`, {
      signal: AbortSignal.timeout(2000),
    }).catch(() => undefined)
    if (response?.status !== 426) continue
    await measure(`on the runtime's own port ${String(direct)}`, `http://127.0.0.1:${String(direct)}`, pids)
  }
} finally {
  await group.stop()
  await rm(scratch, { recursive: true, force: true })
}
