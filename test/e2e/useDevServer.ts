import { afterAll, beforeAll, beforeEach } from 'vitest'
import { createWorkspace, startDev, type DevServer, type Workspace } from './wranglerDev.js'

/**
 * One `wrangler dev` on fresh state for the whole file, stopped afterwards
 * even when a test failed. A failed test prints what wrangler logged.
 */
export function useDevServer(): () => DevServer {
  let workspace: Workspace | undefined
  let dev: DevServer | undefined
  beforeAll(async () => {
    workspace = await createWorkspace()
    dev = await startDev(workspace)
  })
  afterAll(async () => {
    await dev?.stop()
    await workspace?.remove()
  })
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => console.log(`wrangler dev output:\n${dev?.output() ?? '(not started)'}`))
  })
  return () => {
    if (dev === undefined) throw new Error('wrangler dev is not running')
    return dev
  }
}
