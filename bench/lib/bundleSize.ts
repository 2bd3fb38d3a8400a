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

/** An entry file, or the source of a module that re-exports only what a worker would import. */
type Entry = { file: string } | { imports: readonly string[]; from: string }

async function minified(entry: Entry, external: readonly string[]): Promise<Uint8Array> {
  const result = await build({
    ...('file' in entry
      ? { entryPoints: [entry.file] }
      : {
          stdin: {
            contents: `export { ${entry.imports.join(', ')} } from ${JSON.stringify(entry.from)}`,
            resolveDir: REPO_ROOT,
            loader: 'ts' as const,
          },
        }),
    absWorkingDir: REPO_ROOT,
    bundle: true,
    format: 'esm',
    // The resolution wrangler uses for Workers.
    platform: 'browser',
    conditions: ['workerd', 'worker', 'browser'],
    target: 'es2022',
    minify: true,
    write: false,
    external: [...external],
    logLevel: 'silent',
  })
  const output = result.outputFiles[0]
  if (output === undefined) throw new Error(`esbuild wrote nothing for ${JSON.stringify(entry)}`)
  return output.contents
}

function esbuildCommand(external: readonly string[]): string {
  return `esbuild --bundle --minify${external.map((name) => ` --external:${name}`).join('')}`
}

/** One library's own code, bundled alone with esbuild, minified, with `external` left out. */
export async function libraryBundle(
  label: string,
  entry: Entry,
  external: readonly string[],
): Promise<BundleSize> {
  return sizes(label, esbuildCommand(external), await minified(entry, external))
}

/** A quoted string or template literal in minified code (no nesting in what this matches). */
const STRING_LITERAL = /`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g
const LONG_STRING = 24

/**
 * A diagnostic: the same bundle with every string literal longer than 24
 * characters (error messages, log lines, response bodies) cut to a short
 * placeholder. What is left is what the logic weighs, which says whether
 * shorter messages alone could reach a size target.
 */
export async function logicOnlyBundle(
  label: string,
  entry: Entry,
  external: readonly string[],
): Promise<BundleSize> {
  const code = new TextDecoder().decode(await minified(entry, external))
  let n = 0
  const stripped = code.replace(STRING_LITERAL, (literal) =>
    literal.length > LONG_STRING ? `"m${String(n++)}"` : literal,
  )
  return sizes(
    label,
    `${esbuildCommand(external)}, then strings over ${String(LONG_STRING)} characters cut`,
    new TextEncoder().encode(stripped),
  )
}
