import type { Host } from './servers.ts'
import type { BundleSize } from './bundleSize.ts'
import type { StateStore } from './devServer.ts'
import type { Sample } from './measure.ts'
import type { ServerKey } from './servers.ts'

export interface ScenarioInfo {
  id: string
  title: string
  unit: string
  description: string
}

export interface ScenarioResult<Key extends string = ServerKey> {
  scenario: ScenarioInfo
  /** One sample per round, in round order: index i of two servers pairs them within round i. */
  samples: Partial<Record<Key, Sample[]>>
  /** The same load against the Node loopback server: what the client alone can drive. */
  loopback: Sample[]
  /** Whether each measurement set the scenario up on rooms of its own (a new object), or all shared one. */
  freshRooms: boolean
}

export interface WakeSample {
  /** From sending the first message after the idle wait to its reply. */
  latencyMs: number
  /** The runtime's CPU over exactly that span (scheduler counters; USER_HZ ticks if missing). */
  cpuMs: number
  /** Whether the object's constructor ran again, i.e. it had really been evicted. */
  hibernated: boolean
}

export interface MemorySample {
  sockets: number
  /** RSS of the runtime workerd before the sockets were opened. */
  beforeBytes: number
  /** Right after opening them (plus a 1 s settle). */
  openBytes: number
  /** After the idle wait, with the object evicted. */
  idleBytes: number | undefined
}

export interface Machine extends Host {
  date: string
  loadBefore: number[]
  loadAfter: number[]
}

export interface RunSettings {
  mode: 'quick' | 'full'
  direct: boolean
  /** Whether the package server kept its default ping/pong auto-response. */
  heartbeat: boolean
  /** Where the dev servers kept their objects' storage (bench/lib/devServer.ts). */
  state: StateStore
  /** Whether a second copy of the floor ran as an A/A control. */
  control: boolean
  rounds: number
  warmupMs: number
  windowMs: number
  wakeRounds: number
  idleMs: number
  note: string | undefined
  durationMs: number
}

export interface Results {
  settings: RunSettings
  machine: Machine
  scenarios: ScenarioResult[]
  /** One sample per wake-up round, in round order, paired by index like `ScenarioResult.samples`. */
  wake: Partial<Record<ServerKey, WakeSample[]>>
  memory: Partial<Record<ServerKey, MemorySample>>
  bundles: BundleSize[]
}
