import { execFile } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { spawnGroup } from './group.ts'
import { answersLike, findWorkerd, runtimeOrigin } from '../../tools/wranglerWorkerd.ts'

export const REPO_ROOT = join(import.meta.dirname, '../..')
export const WRANGLER = join(REPO_ROOT, 'node_modules/wrangler/bin/wrangler.js')
const READY = /Ready on http:\/\/127\.0\.0\.1:(\d+)/

const run = promisify(execFile)

/**
 * Where a dev server keeps its Durable Objects' SQLite files. workerd keeps
 * local storage in WAL mode with SQLite's default sync, so every commit of
 * an object's storage ends in an fsync of the WAL; on an ordinary disk the
 * kernel's share of that fsync, counted in the runtime's CPU, outweighs the
 * commit itself, and a figure would measure the machine's disk rather than
 * the server. So state lives in memory (/dev/shm) by default; `disk` puts it
 * in the scratch directory, as `wrangler dev` does on a developer's machine.
 */
export type StateStore = 'memory' | 'disk'

/** BENCH_STATE=disk (what `npm run bench -- --state disk` sets) or memory, where /dev/shm exists. */
export function defaultStateStore(): StateStore {
  if (process.env.BENCH_STATE === 'disk') return 'disk'
  return existsSync('/dev/shm') ? 'memory' : 'disk'
}

/**
 * The environment every wrangler we start gets. X_LOCAL_OBSERVABILITY=false
 * turns off wrangler's local tracing of every invocation, which on its own
 * triples the worker's CPU per message and would hide every difference.
 */
export function wranglerEnv(scratch: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: 'false',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    X_LOCAL_OBSERVABILITY: 'false',
    XDG_CONFIG_HOME: join(scratch, 'config'),
    CI: 'true',
  }
}

/**
 * A copy of a server's committed wrangler.toml in `scratch`, with `main`
 * made absolute (or replaced). wrangler writes its bundles to `.wrangler/`
 * beside the config it is given, so they stay out of bench/ (and out of
 * eslint's way).
 */
export async function scratchConfig(serverDir: string, scratch: string, main?: string): Promise<string> {
  const committed = await readFile(join(serverDir, 'wrangler.toml'), 'utf8')
  const entry = /^main = "(.+)"$/m.exec(committed)?.[1]
  if (entry === undefined) throw new Error(`${serverDir}/wrangler.toml has no main = "…" line`)
  await mkdir(scratch, { recursive: true })
  const config = join(scratch, 'wrangler.toml')
  await writeFile(
    config,
    committed.replace(/^main = ".+"$/m, `main = ${JSON.stringify(main ?? join(serverDir, entry))}`),
  )
  return config
}

/** Bundles a server the way `wrangler deploy` would and returns the path of its worker.js. */
export async function buildWorker(serverDir: string, scratch: string, minify: boolean): Promise<string> {
  const config = await scratchConfig(serverDir, scratch)
  const outdir = join(scratch, 'out')
  await run(
    process.execPath,
    [
      WRANGLER,
      'deploy',
      '--dry-run',
      ...(minify ? ['--minify'] : []),
      '--outdir',
      outdir,
      '--config',
      config,
    ],
    { cwd: scratch, env: wranglerEnv(scratch) },
  )
  return join(outdir, 'worker.js')
}

export interface DevServer {
  /** `ws://127.0.0.1:<port>` of wrangler's public port (its proxy workerd), or of the runtime itself with `direct`. */
  readonly wsOrigin: string
  readonly origin: string
  /** `http://127.0.0.1:<port>` of wrangler's public port, whichever `origin` is. */
  readonly publicOrigin: string
  /** The workerd that runs the Worker and its Durable Objects. */
  readonly runtimePid: number
  /** The workerd that relays every frame between the public port and the runtime. */
  readonly proxyPid: number
  /** The process group of wrangler and its two workerd. */
  readonly pgid: number
  output(): string
  stop(): Promise<void>
  /**
   * SIGKILL to the whole group, a crash: unlike stop(), it leaves the state
   * in place, for a server started again on it (the storm section).
   */
  kill(): Promise<void>
}

export interface StartOptions {
  /** Connect straight to the runtime workerd's own port, bypassing wrangler's proxy. */
  direct: boolean
  /** `--var NAME:value` pairs for the worker's env. */
  vars?: Readonly<Record<string, string>>
  /** Where its objects' storage lives; defaultStateStore() when not given. */
  state?: StateStore
  /** Listen on this port rather than a free one: a server started again where the killed one was. */
  port?: number
  /**
   * Keep the objects' storage in this directory, which the caller owns (stop()
   * leaves it), instead of a fresh one: a server started again on the state
   * of the one before.
   */
  persistTo?: string
  /** A worker.js built already (buildWorker): a restart skips the build, as a deploy would. */
  bundle?: string
}

/**
 * `wrangler dev` for one bench server, in its own process group, with a free
 * port, a scratch state directory and local tracing off. Resolves once it
 * serves, with the pids of its two workerd processes.
 */
export async function startDevServer(
  serverDir: string,
  scratch: string,
  options: StartOptions,
): Promise<DevServer> {
  // wrangler dev rebuilds and restarts the runtime whenever a source file changes, which would
  // drop every socket mid-run if src/ is edited meanwhile. So it serves a bundle built up front,
  // as `wrangler deploy` would build it, with --no-bundle: nothing it watches ever changes.
  const bundle = options.bundle ?? (await buildWorker(serverDir, join(scratch, 'build'), false))
  const config = await scratchConfig(serverDir, join(scratch, 'run'), bundle)
  const owned = options.persistTo === undefined
  const state =
    options.persistTo ??
    ((options.state ?? defaultStateStore()) === 'memory'
      ? await mkdtemp('/dev/shm/durable-websocket-bench-state-')
      : join(scratch, 'state'))
  const removeState = async (): Promise<void> => {
    if (owned) await rm(state, { recursive: true, force: true })
  }
  // Memory is not freed by a reboot only: a run cut short must not leave its objects in /dev/shm.
  if (owned) process.once('exit', () => rmSync(state, { recursive: true, force: true }))
  const group = spawnGroup(
    process.execPath,
    [
      WRANGLER,
      'dev',
      '--no-bundle',
      '--config',
      config,
      '--ip',
      '127.0.0.1',
      '--port',
      String(options.port ?? 0),
      '--inspector-port',
      '0',
      '--persist-to',
      state,
      '--show-interactive-dev-session=false',
      ...Object.entries(options.vars ?? {}).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
    ],
    { cwd: join(scratch, 'run'), env: wranglerEnv(scratch) },
  )
  try {
    const port = await group.waitFor(READY)
    const { runtime, proxy } = await findWorkerd(group.pgid)
    const publicOrigin = `http://127.0.0.1:${port}`
    const origin = options.direct
      ? await runtimeOrigin(runtime.pid, await answersLike(publicOrigin))
      : publicOrigin
    return {
      origin,
      publicOrigin,
      wsOrigin: origin.replace(/^http/, 'ws'),
      runtimePid: runtime.pid,
      proxyPid: proxy.pid,
      pgid: group.pgid,
      output: () => group.output(),
      stop: async () => {
        await group.stop()
        await removeState()
      },
      kill: () => group.kill(),
    }
  } catch (error) {
    await group.stop().catch(() => undefined)
    await removeState()
    throw error
  }
}
