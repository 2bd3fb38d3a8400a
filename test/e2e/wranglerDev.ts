import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const REPO_ROOT = resolve(import.meta.dirname, '../..')
const WRANGLER = join(REPO_ROOT, 'node_modules/wrangler/bin/wrangler.js')
const READY = /Ready on http:\/\/127\.0\.0\.1:(\d+)/
const READY_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 10_000

/** Process groups started here and not yet gone; a dying test worker takes them down with it. */
const running = new Set<number>()
process.once('exit', () => {
  for (const pgid of running) signalGroup(pgid, 'SIGKILL')
})

/** A scratch directory: `state` is what `--persist-to` gets, so it outlives a restart. */
export interface Workspace {
  readonly root: string
  readonly state: string
  remove(): Promise<void>
}

export async function createWorkspace(): Promise<Workspace> {
  const root = await mkdtemp(join(tmpdir(), 'durable-websocket-e2e-'))
  const state = join(root, 'state')
  await mkdir(state)
  return { root, state, remove: () => rm(root, { recursive: true, force: true }) }
}

export interface DevServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  /** `ws://127.0.0.1:<port>` */
  readonly wsOrigin: string
  /** Everything wrangler printed so far, for failure messages. */
  output(): string
  /** SIGTERM to the whole group (wrangler and both workerd), then SIGKILL if it is still there. */
  stop(): Promise<void>
  /** SIGKILL to the whole group: a crash, with no chance to shut anything down. */
  kill(): Promise<void>
}

/**
 * Starts `wrangler dev` on the repo's wrangler.toml (or `config`) with a free port. The
 * child gets its own process group because wrangler runs two workerd
 * processes (a proxy and the runtime) that a signal to wrangler alone leaves behind.
 */
export interface StartOptions {
  /**
   * Start through the README's own command, `npm start -- --port N`, on
   * this port instead of wrangler directly on a free one.
   */
  npmStartPort?: number
  /**
   * Listen on this port instead of a free one, e.g. the port of a server
   * that was just stopped, so clients that reconnect by themselves find the
   * restarted one where the old one was.
   */
  port?: number
  /** A wrangler.toml other than the repo's (a test fixture), passed as `--config`. */
  config?: string
}

export async function startDev(workspace: Workspace, options: StartOptions = {}): Promise<DevServer> {
  const devFlags = [
    '--inspector-port',
    '0',
    '--persist-to',
    workspace.state,
    '--show-interactive-dev-session=false',
    ...(options.config === undefined ? [] : ['--config', options.config]),
  ]
  const [command, args] =
    options.npmStartPort === undefined
      ? [
          process.execPath,
          [WRANGLER, 'dev', '--ip', '127.0.0.1', '--port', String(options.port ?? 0), ...devFlags],
        ]
      : ['npm', ['start', '--', '--port', String(options.npmStartPort), ...devFlags]]
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      XDG_CONFIG_HOME: join(workspace.root, 'config'),
      X_LOCAL_OBSERVABILITY: 'false',
      CI: 'true',
    },
  })
  const pgid = child.pid
  if (pgid === undefined) throw new Error('wrangler dev could not be spawned')
  running.add(pgid)
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()))

  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))

  let port: string
  try {
    port = await waitForReady(child, () => output)
  } catch (error) {
    // The start-up error says more than a failed clean-up would; the exit hook still has the group.
    await endGroup(pgid, exited, 'SIGKILL').catch(() => undefined)
    throw error
  }

  let ended: Promise<void> | undefined
  const end = (signal: NodeJS.Signals): Promise<void> => (ended ??= endGroup(pgid, exited, signal))
  return {
    origin: `http://127.0.0.1:${port}`,
    wsOrigin: `ws://127.0.0.1:${port}`,
    output: () => output,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  }
}

/** Resolves with the port from wrangler's "Ready on" line; rejects, with its output, if it exits or stalls first. */
function waitForReady(child: ChildProcess, output: () => string): Promise<string> {
  return new Promise((resolveReady, reject) => {
    const cleanUp = (): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
    }
    const fail = (why: string): void => {
      cleanUp()
      reject(new Error(`wrangler dev ${why}:\n${output()}`))
    }
    const onData = (): void => {
      const port = READY.exec(output())?.[1]
      if (port === undefined) return
      cleanUp()
      resolveReady(port)
    }
    const onExit = (code: number | null, signal: string | null): void => {
      fail(`exited (${String(code ?? signal)}) before it was ready`)
    }
    const timer = setTimeout(
      () => fail(`was not ready within ${String(READY_TIMEOUT_MS)} ms`),
      READY_TIMEOUT_MS,
    )
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** Signals the group, waits (bounded) for every member to go, and SIGKILLs whatever is left. */
async function endGroup(pgid: number, exited: Promise<void>, signal: NodeJS.Signals): Promise<void> {
  signalGroup(pgid, signal)
  let gone = await groupGone(pgid, exited, STOP_TIMEOUT_MS)
  if (!gone && signal !== 'SIGKILL') {
    signalGroup(pgid, 'SIGKILL')
    gone = await groupGone(pgid, exited, STOP_TIMEOUT_MS)
  }
  if (!gone) throw new Error(`wrangler dev (process group ${String(pgid)}) was still running after SIGKILL`)
  running.delete(pgid)
}

async function groupGone(pgid: number, exited: Promise<void>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  // The leader is our child: it stays a zombie, still in the group, until Node reaps it.
  const leaderGone = await Promise.race([exited.then(() => true), sleep(timeoutMs, false, { ref: false })])
  if (!leaderGone) return false
  while (Date.now() < deadline) {
    if (!signalGroup(pgid, 0)) return true
    await sleep(50)
  }
  return false
}

/** Returns false once no process is left in the group. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw error
  }
}
