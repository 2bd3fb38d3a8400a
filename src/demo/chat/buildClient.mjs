// Compiles src/client to browser modules for the chat page: wrangler.toml runs this as its
// [build] command before every bundle (and again when src/client changes under `wrangler dev`),
// so `npm start` needs no build step of its own. Types are checked by `npm run typecheck`;
// this only strips them.
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import process from 'node:process'
import ts from 'typescript'

const root = join(import.meta.dirname, '../../..')
const source = join(root, 'src/client')
const outDir = join(root, '.wrangler/demo-client')

const modules = {}
for (const file of (await readdir(source)).sort()) {
  if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue
  const { outputText } = ts.transpileModule(await readFile(join(source, file), 'utf8'), {
    fileName: file,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ES2022,
      verbatimModuleSyntax: true,
    },
  })
  modules[file.replace(/\.ts$/, '.js')] = outputText
}

await mkdir(outDir, { recursive: true })
// Written aside and renamed, so a bundle running at the same time never reads half a file.
const temporary = join(outDir, `modules.${String(process.pid)}.js`)
await writeFile(temporary, `export default ${JSON.stringify(modules, null, 2)}\n`)
await rename(temporary, join(outDir, 'modules.js'))
