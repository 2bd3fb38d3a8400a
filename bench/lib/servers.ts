import { readFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from './devServer.ts'

export type ServerKey = 'package' | 'raw' | 'partyserver' | 'control'

export interface ServerSpec {
  readonly key: ServerKey
  readonly label: string
  /** The directory with its wrangler.toml and worker.ts. */
  readonly dir: string
  /** The path of a room's WebSocket endpoint on this server. */
  path(room: string): string
}

/** The machine and the versions a run measured on, as every RESULTS file reports them. */
export interface Host {
  cpus: number
  cpuModel: string
  memoryBytes: number
  kernel: string
  node: string
  wrangler: string
  workerd: string
  ws: string
}

export function describeHost(): Host {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    wrangler: version('wrangler'),
    workerd: version('workerd'),
    ws: version('ws'),
  }
}

export function version(name: string): string {
  const manifest = JSON.parse(
    readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8'),
  ) as {
    version: string
  }
  return manifest.version
}

/** The floor every ratio is taken against. */
export const FLOOR: ServerKey = 'raw'

/** In the order of the first round; later rounds rotate it (A B C, B C A, C A B, …). */
export const SERVERS: readonly ServerSpec[] = [
  {
    key: 'package',
    label: 'durable-websocket',
    dir: join(REPO_ROOT, 'bench/servers/package'),
    path: (room) => `/ws/${room}`,
  },
  {
    key: 'raw',
    label: 'raw Hibernation API (floor)',
    dir: join(REPO_ROOT, 'bench/servers/raw'),
    path: (room) => `/ws/${room}`,
  },
  {
    key: 'partyserver',
    label: `partyserver ${version('partyserver')}`,
    dir: join(REPO_ROOT, 'bench/servers/partyserver'),
    // routePartykitRequest: /parties/<binding in kebab-case>/<room>
    path: (room) => `/parties/bench/${room}`,
  },
]

/**
 * A second, identical copy of the floor under its own wrangler dev. Its
 * distance from the floor is the noise of the run: differences between the
 * servers smaller than that are not resolved.
 */
export const CONTROL: ServerSpec = {
  key: 'control',
  label: 'raw again (A/A control)',
  dir: join(REPO_ROOT, 'bench/servers/raw'),
  path: (room) => `/ws/${room}`,
}

/** Every server a table may have a row for, in table order. */
export const ALL_SERVERS: readonly ServerSpec[] = [...SERVERS, CONTROL]

export function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length
  return [...items.slice(shift), ...items.slice(0, shift)]
}
