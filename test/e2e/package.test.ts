import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join, posix, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { connect } from './client.js'
import { createWorkspace, startDev, type DevServer, type Workspace } from './wranglerDev.js'

const run = promisify(execFile)
const REPO_ROOT = resolve(import.meta.dirname, '../..')
const OFFLINE_ENV = { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' }

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (typeof address === 'object' && address !== null) resolvePort(address.port)
        else reject(new Error('no port was assigned'))
      })
    })
  })
}

describe('the published package', () => {
  it('npm pack lists dist, the docs, the examples, the bench results, the README, CONTRIBUTING, the licence and package.json, and leaves the demo out', async () => {
    // npm test has built dist/ already; --ignore-scripts keeps prepack from building it again.
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: REPO_ROOT,
    })
    const [report] = JSON.parse(stdout) as [{ files: { path: string }[] }]
    const paths = report.files.map((file) => file.path)
    for (const path of [
      'dist/index.js',
      'dist/index.d.ts',
      'README.md',
      'CONTRIBUTING.md',
      'LICENSE',
      'docs/api.md',
      'docs/guide.md',
      'examples/echo/src/worker.ts',
      'examples/chat/public/index.html',
      'bench/RESULTS.md',
    ]) {
      expect(paths).toContain(path)
    }
    const shipped =
      /^(dist|docs|examples)\/|^bench\/RESULTS[\w-]*\.md$|^(README|CONTRIBUTING)\.md$|^LICENSE$|^package\.json$/
    expect(paths.filter((path) => !shipped.test(path))).toEqual([])
    expect(paths.filter((path) => path.startsWith('dist/demo'))).toEqual([])
    // What a run of an example leaves behind is not the example.
    expect(
      paths.filter((path) => /node_modules|\.wrangler|worker-configuration|chat\.js$/.test(path)),
    ).toEqual([])
  })

  it('resolves every relative link of every Markdown file it ships inside the package, anchors included', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: REPO_ROOT,
    })
    const [report] = JSON.parse(stdout) as [{ files: { path: string }[] }]
    const paths = new Set(report.files.map((file) => file.path))
    const pages = [...paths].filter((path) => path.endsWith('.md'))
    expect(pages).toContain('docs/guarantees.md')
    const anchors = new Map<string, Set<string>>()
    for (const page of pages) anchors.set(page, headingAnchors(await readFile(join(REPO_ROOT, page), 'utf8')))
    const broken: string[] = []
    let checked = 0
    for (const page of pages) {
      const text = await readFile(join(REPO_ROOT, page), 'utf8')
      for (const [, target = '', anchor] of text.matchAll(/\]\(([^)#\s]*)(?:#([^)\s]*))?\)/g)) {
        if (/^[a-z]+:/.test(target)) continue
        checked++
        const resolved =
          target === '' ? page : posix.normalize(posix.join(posix.dirname(page), target)).replace(/\/$/, '')
        const found = paths.has(resolved) || [...paths].some((path) => path.startsWith(`${resolved}/`))
        if (!found) broken.push(`${page} -> ${target}`)
        else if (anchor !== undefined && anchors.has(resolved) && !anchors.get(resolved)?.has(anchor))
          broken.push(`${page} -> ${target}#${anchor}`)
      }
    }
    expect(checked).toBeGreaterThan(50)
    expect(broken).toEqual([])
  })
})

/** The anchors a Markdown renderer gives a page's headings, the way GitHub and npm spell them. */
function headingAnchors(text: string): Set<string> {
  const found = new Set<string>()
  const seen = new Map<string, number>()
  for (const [, heading = ''] of text.matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const slug = heading
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    found.add(count === 0 ? slug : `${slug}-${String(count)}`)
  }
  return found
}

describe('the demo worker', () => {
  let workspace: Workspace | undefined
  let dev: DevServer | undefined
  afterAll(async () => {
    await dev?.stop()
    await workspace?.remove()
  })

  it('builds offline with wrangler deploy --dry-run', async () => {
    workspace = await createWorkspace()
    const outdir = join(workspace.root, 'out')
    await run(
      process.execPath,
      [join(REPO_ROOT, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', outdir],
      { cwd: REPO_ROOT, env: { ...OFFLINE_ENV, XDG_CONFIG_HOME: join(workspace.root, 'config') } },
    )
    const bundle = await readFile(join(outdir, 'worker.js'), 'utf8')
    // esbuild writes `var Hub = class extends WebSocketObject`; the object must be in the bundle.
    expect(bundle).toMatch(/\bHub = class extends WebSocketObject\b/)
  })

  it('serves the echo on the port given to npm start -- --port N', async () => {
    workspace ??= await createWorkspace()
    const port = await freePort()
    dev = await startDev(workspace, { npmStartPort: port })
    expect(dev.origin).toBe(`http://127.0.0.1:${String(port)}`)
    const client = await connect(`${dev.wsOrigin}/ws`)
    client.send({ hello: 'world' })
    expect(await client.next()).toEqual({ received: { hello: 'world' } })
    expect((await client.close()).code).toBe(1000)
  })
})
