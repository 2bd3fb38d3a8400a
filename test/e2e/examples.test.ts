import { execFile } from 'node:child_process'
import { cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify, stripVTControlCharacters } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import NodeWs from 'ws'
import { connect as connectClient, type WebSocketConstructor } from '../../src/client/index.js'
import type { ToClient } from '../../examples/chat/src/protocol.js'
import { connect } from './client.js'
import { recordEvents } from './clientEvents.js'
import { startDev, type DevServer } from './wranglerDev.js'

/**
 * The README's promise, kept from the packed tarball: each example in
 * examples/, copied out of the repo and installed as a user would install it,
 * type-checks, passes its own tests inside workerd and serves a real client
 * under its own `wrangler dev`. Slow (an install per example); bounded by the
 * timeouts below.
 */

const run = promisify(execFile)
const REPO_ROOT = resolve(import.meta.dirname, '../..')
/** An install from the npm cache, a `wrangler types`, a tsc and a vitest run, each well inside this. */
const STEP_MS = 180_000

let scratch: string
let tarball: string

/** Runs a command in `cwd` on this process's Node 22 and PATH, offline for wrangler; bounded, and failing with its output. */
async function inProject(cwd: string, command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args, {
      cwd,
      timeout: STEP_MS,
      killSignal: 'SIGKILL',
      maxBuffer: 16 * 1024 * 1024,
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: 'false',
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        XDG_CONFIG_HOME: join(scratch, 'config'),
        CI: 'true',
      },
    })
    return stdout
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string }
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`, { cause: error })
  }
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'durable-websocket-examples-'))
  // prepack builds dist/ first, so the tarball holds what the sources say now.
  await inProject(REPO_ROOT, 'npm', ['pack', '--pack-destination', scratch, '--silent'])
  const [name] = (await readdir(scratch)).filter((file) => file.endsWith('.tgz'))
  if (name === undefined) throw new Error(`npm pack left no tarball in ${scratch}`)
  tarball = join(scratch, name)
}, STEP_MS)

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

/** A copy of examples/<name> without anything a run in place may have left there, with the tarball installed. */
async function install(name: string): Promise<string> {
  const project = join(scratch, name)
  const leftovers = new Set(['node_modules', '.wrangler', 'worker-configuration.d.ts', 'chat.js'])
  await cp(join(REPO_ROOT, 'examples', name), project, {
    recursive: true,
    filter: (source) => !leftovers.has(source.split('/').at(-1) ?? ''),
  })
  await inProject(project, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball])
  return project
}

function exampleSteps(name: string, roundTrip: (dev: DevServer) => Promise<void>): void {
  describe(`examples/${name}, installed from the packed tarball`, () => {
    let project: string
    let dev: DevServer | undefined
    afterAll(async () => {
      await dev?.stop()
    })

    it('installs with its pinned versions', { timeout: STEP_MS }, async () => {
      project = await install(name)
      const installed = await inProject(project, 'npm', ['ls', 'durable-websocket', 'wrangler', '--json'])
      const tree = JSON.parse(installed) as { dependencies: Record<string, { version: string }> }
      expect(tree.dependencies['durable-websocket']?.version).toBe('0.1.0')
      expect(tree.dependencies.wrangler?.version).toBe('4.155.0')
    })

    it('type-checks with npm run typecheck', { timeout: STEP_MS }, async () => {
      await inProject(project, 'npm', ['run', 'typecheck'])
    })

    it('passes its own tests inside workerd with npm test', { timeout: STEP_MS }, async () => {
      const output = await inProject(project, 'npm', ['test'])
      expect(stripVTControlCharacters(output)).toMatch(/Tests\s+\d+ passed/)
    })

    it('serves a real ws client under its own wrangler dev', { timeout: STEP_MS }, async () => {
      const workspace = join(scratch, `${name}-state`)
      dev = await startDev({ root: scratch, state: workspace, remove: () => Promise.resolve() }, { project })
      await roundTrip(dev)
    })
  })
}

exampleSteps('echo', async (dev) => {
  const client = await connect(`${dev.wsOrigin}/ws/e2e`)
  client.send({ hello: 'world' })
  expect(await client.next()).toEqual({ received: { hello: 'world' } })
  expect((await client.close()).code).toBe(1000)
})

exampleSteps('chat', async (dev) => {
  const page = await fetch(`${dev.origin}/`)
  expect(await page.text()).toContain('<script type="module" src="/chat.js">')
  // wrangler dev ran the build step: the page's script is the bundled client.
  const script = await fetch(`${dev.origin}/chat.js`)
  expect(script.status).toBe(200)
  expect(await script.text()).toContain('ERR_DWS_INVALID_OPTIONS')

  const client = await connect(`${dev.wsOrigin}/chat/e2e?name=ada`)
  client.send({ text: 'hello' })
  expect(await client.next()).toEqual({ type: 'said', name: 'ada', text: 'hello' })
  const history = await fetch(`${dev.origin}/rooms/e2e/history`)
  expect(await history.json()).toEqual([{ type: 'said', name: 'ada', text: 'hello' }])
  expect((await fetch(`${dev.origin}/rooms/a..b/history`)).status).toBe(400)
  const members = await fetch(`${dev.origin}/rooms/e2e/members`)
  expect(await members.json()).toEqual([{ key: 'ada', meta: {}, connections: 1 }])
  expect((await client.close()).code).toBe(1000)

  // Presence: the page's client hears who joins and leaves, and a member whose connection drops and
  // resumes its session neither leaves nor joins.
  const watcher = connectClient<ToClient, { text: string }>(`${dev.wsOrigin}/chat/resumes?name=cleo`)
  const watching = recordEvents(watcher)
  const cleo = { key: 'cleo', meta: {}, connections: 1 }
  expect(await watching.next('presence')).toEqual({ joined: [cleo], updated: [], left: [] })
  const sockets: NodeWs[] = []
  class Tracked extends NodeWs {
    constructor(...args: ConstructorParameters<typeof NodeWs>) {
      super(...args)
      sockets.push(this)
    }
  }
  const dan = connectClient<ToClient, { text: string }>(`${dev.wsOrigin}/chat/resumes?name=dan`, {
    WebSocket: Tracked as unknown as WebSocketConstructor,
  })
  const opened = recordEvents(dan)
  expect(await opened.next('open')).toEqual({ reconnected: false, resumed: false })
  const danMember = { key: 'dan', meta: {}, connections: 1 }
  expect(await watching.next('presence')).toEqual({ joined: [danMember], updated: [], left: [] })
  sockets[0]?.terminate()
  expect(await opened.next('open')).toEqual({ reconnected: true, resumed: true })
  dan.send({ text: 'back' })
  // The watcher hears dan's line, and no leave or join came before it.
  expect(await watching.next('message')).toEqual({ type: 'said', name: 'dan', text: 'back' })
  expect(watching.of('presence')).toHaveLength(2)
  expect(watcher.presence).toEqual([cleo, danMember])
  dan.close()
  expect(await watching.next('presence')).toEqual({ joined: [], updated: [], left: [danMember] })
  watcher.close()
})

describe("the README's and the guide's echo", () => {
  it('shows, file for file, the examples/echo project that the steps above install from the tarball and run', async () => {
    const shown: [page: string, file: string][] = [
      ['README.md', 'src/worker.ts'],
      ['README.md', 'wrangler.jsonc'],
      ['docs/guide.md', 'src/worker.ts'],
      ['docs/guide.md', 'wrangler.jsonc'],
      ['docs/guide.md', 'vitest.config.ts'],
      ['docs/guide.md', 'test/echo.test.ts'],
    ]
    for (const [page, file] of shown) {
      const text = await readFile(join(REPO_ROOT, page), 'utf8')
      const block = firstBlockAfter(text, `\`${file}\`:`)
      expect(block, `${page}'s ${file}`).toBe(await readFile(join(REPO_ROOT, 'examples/echo', file), 'utf8'))
    }
  })
})

/** The body of the first fenced code block after the line `label`, as the page shows it. */
function firstBlockAfter(text: string, label: string): string | undefined {
  const at = text.indexOf(`\n${label}\n`)
  if (at === -1) return undefined
  return /\n```[a-z]*\n([\s\S]*?)```\n/.exec(text.slice(at))?.[1]
}
