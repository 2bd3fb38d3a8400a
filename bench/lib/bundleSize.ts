import { readFile } from 'node:fs/promises'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { REPO_ROOT, buildWorker } from './devServer.ts'

export interface BundleSize {
  label: string
  how: string
  minifiedBytes: number
  gzipBytes: number
}

function sizes(label: string, how: string, code: Uint8Array): BundleSize {
  return { label, how, minifiedBytes: code.byteLength, gzipBytes: gzipSync(code, { level: 9 }).byteLength }
}

/** What `wrangler deploy --minify` would upload for a bench server: its whole worker. */
export async function workerBundle(label: string, serverDir: string, scratch: string): Promise<BundleSize> {
  const bundle = await buildWorker(serverDir, scratch, true)
  return sizes(label, 'wrangler deploy --dry-run --minify', await readFile(bundle))
}

/** One library's own code, bundled alone with esbuild, minified, with `external` left out. */
export async function libraryBundle(label: string, entry: string, external: string[]): Promise<BundleSize> {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: REPO_ROOT,
    bundle: true,
    format: 'esm',
    // The resolution wrangler uses for Workers.
    platform: 'browser',
    conditions: ['workerd', 'worker', 'browser'],
    target: 'es2022',
    minify: true,
    write: false,
    external,
    logLevel: 'silent',
  })
  const output = result.outputFiles[0]
  if (output === undefined) throw new Error(`esbuild wrote nothing for ${entry}`)
  const how = `esbuild --bundle --minify${external.map((name) => ` --external:${name}`).join('')}`
  return sizes(label, how, output.contents)
}
