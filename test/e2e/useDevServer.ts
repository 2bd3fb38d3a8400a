import { afterAll, beforeAll, beforeEach } from 'vitest'
import {
  createWorkspace,
  startDev,
  type DevServer,
  type StartOptions,
  type Workspace,
} from './wranglerDev.js'

export interface DevServerOptions {
  /** A wrangler.toml other than the repo's (a test fixture), passed as `--config`. */
  config?: string
  /** What a failed test prints of wrangler's output; all of it unless given. */
  failureOutput?: (output: string) => string
}

/** The server a file's tests talk to, as useDevServer returns it. */
export interface UsedDevServer {
  /** The server started last; throws if none was started. */
  (): DevServer
  /**
   * Starts wrangler dev again on the same state, config and port, after the
   * test stopped or killed the one before: clients that reconnect by
   * themselves find it where the old one was.
   */
  startAgain(): Promise<DevServer>
}

/**
 * One `wrangler dev` on fresh state for the whole file (or the describe it is
 * called in), stopped afterwards even when a test failed. A failed test
 * prints what wrangler logged.
 */
export function useDevServer(options: DevServerOptions = {}): UsedDevServer {
  const start: StartOptions = options.config === undefined ? {} : { config: options.config }
  const failureOutput = options.failureOutput ?? ((output: string) => output)
  let workspace: Workspace | undefined
  let dev: DevServer | undefined
  beforeAll(async () => {
    workspace = await createWorkspace()
    dev = await startDev(workspace, start)
  })
  afterAll(async () => {
    await dev?.stop()
    await workspace?.remove()
  })
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      const output = dev === undefined ? '(not started)' : failureOutput(dev.output())
      console.log(`wrangler dev output:\n${output}`)
    })
  })
  const server = (): DevServer => {
    if (dev === undefined) throw new Error('wrangler dev is not running')
    return dev
  }
  const startAgain = async (): Promise<DevServer> => {
    if (workspace === undefined) throw new Error('no workspace')
    const port = Number(new URL(server().origin).port)
    dev = await startDev(workspace, { ...start, port })
    return dev
  }
  return Object.assign(server, { startAgain })
}
