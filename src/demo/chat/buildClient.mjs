// Bundles the package's client (src/client with the src/shared code it imports) into one browser
// module for the chat page. wrangler.toml runs this as its [build] command before every bundle, and
// again when src changes under `wrangler dev`, so `npm start` needs no build step of its own.
// Types are checked by `npm run typecheck`; esbuild only strips them.
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import process from 'node:process'
import { build } from 'esbuild'

const root = join(import.meta.dirname, '../../..')
const outDir = join(root, '.wrangler/demo-client')

const { outputFiles } = await build({
  entryPoints: [join(root, 'src/client/index.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  write: false,
  outfile: 'client.js',
  logLevel: 'warning',
})
const [bundle] = outputFiles
if (bundle === undefined) throw new Error('esbuild produced no bundle for src/client/index.ts')

await mkdir(outDir, { recursive: true })
// Written aside and renamed, so a bundle running at the same time never reads half a file.
const temporary = join(outDir, `client.${String(process.pid)}.js`)
await writeFile(temporary, `export default ${JSON.stringify(bundle.text)}\n`)
await rename(temporary, join(outDir, 'client.js'))
