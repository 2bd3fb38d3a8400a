import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { spawnProcessGroup } from '../../tools/processGroup.js'
import { answersLike, findWorkerd, runtimeOrigin } from '../../tools/wranglerWorkerd.js'

const REPO_ROOT = resolve(import.meta.dirname, '../..')
const WRANGLER = join(REPO_ROOT, 'node_modules/wrangler/bin/wrangler.js')
const READY = /Ready on http:\/\/127\.0\.0\.1:(\d+)/
const READY_TIMEOUT_MS = 60_000

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
  /** The process group of wrangler and its two workerd processes. */
  readonly pgid: number
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
  /**
   * The workerd that runs the Worker, and its own HTTP port: sockets dialled
   * there skip wrangler's proxy, which holds about four descriptors per
   * socket (tools/wranglerWorkerd.ts). Found on the first call; a new one at
   * every start.
   */
  runtime(): Promise<Runtime>
}

export interface Runtime {
  readonly pid: number
  /** `http://127.0.0.1:<port>` of the runtime's own port. */
  readonly origin: string
  /** `ws://127.0.0.1:<port>` of the same. */
  readonly wsOrigin: string
}

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
  /** A project of its own (an example installed elsewhere): run there, with its own wrangler. */
  project?: string
}

/**
 * Starts `wrangler dev` on the repo's wrangler.toml (or `config`) with a free port, in a
 * process group of its own, so that stopping it stops both its workerd processes too.
 */
export async function startDev(workspace: Workspace, options: StartOptions = {}): Promise<DevServer> {
  const devFlags = [
    '--inspector-port',
    '0',
    '--persist-to',
    workspace.state,
    '--show-interactive-dev-session=false',
    ...(options.config === undefined ? [] : ['--config', options.config]),
  ]
  const cwd = options.project ?? REPO_ROOT
  const wrangler =
    options.project === undefined ? WRANGLER : join(cwd, 'node_modules/wrangler/bin/wrangler.js')
  const [command, args] =
    options.npmStartPort === undefined
      ? [
          process.execPath,
          [wrangler, 'dev', '--ip', '127.0.0.1', '--port', String(options.port ?? 0), ...devFlags],
        ]
      : ['npm', ['start', '--', '--port', String(options.npmStartPort), ...devFlags]]
  const group = spawnProcessGroup(command, args, {
    cwd,
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      XDG_CONFIG_HOME: join(workspace.root, 'config'),
      X_LOCAL_OBSERVABILITY: 'false',
      CI: 'true',
    },
    name: 'wrangler dev',
  })

  let port: string
  try {
    port = await group.waitFor(READY, READY_TIMEOUT_MS)
  } catch (error) {
    // The start-up error says more than a failed clean-up would; the exit hook still has the group.
    await group.kill().catch(() => undefined)
    throw error
  }

  const origin = `http://127.0.0.1:${port}`
  let runtime: Promise<Runtime> | undefined
  return {
    pgid: group.pgid,
    origin,
    wsOrigin: `ws://127.0.0.1:${port}`,
    output: () => group.output(),
    stop: () => group.stop(),
    kill: () => group.kill(),
    runtime: () => (runtime ??= findRuntime(group.pgid, origin)),
  }
}

/**
 * The runtime's pid and own port: of its listening ports, the one that
 * answers like the public port (tools/wranglerWorkerd.ts).
 */
async function findRuntime(pgid: number, publicOrigin: string): Promise<Runtime> {
  const { runtime } = await findWorkerd(pgid)
  const origin = await runtimeOrigin(runtime.pid, await answersLike(publicOrigin))
  return { pid: runtime.pid, origin, wsOrigin: origin.replace(/^http/, 'ws') }
}
