import type { BundleSize } from './bundleSize.ts'
import type { Sample } from './measure.ts'
import type { Results, ScenarioResult, WakeSample } from './results.ts'
import { ALL_SERVERS, FLOOR, type ServerKey } from './servers.ts'
import { median, quantile, spread, type Spread } from './stats.ts'

/** The issue's targets for this package, against the floor. Reported, never asserted. */
const TARGET_CPU = 1.05
const TARGET_THROUGHPUT = 0.95
const TARGET_P99 = 1.1
const TARGET_OWN_CODE_BYTES = 3_000

export interface Summary {
  throughput: number
  p50: number
  p99: number
  workerBusy: number
  proxyBusy: number
  clientBusy: number
  clientUsPerOp: number
  rounds: number
}

export const cpuPerOp = (s: Sample): number => (s.workerCpuMs * 1000) / s.ops
export const throughputOf = (s: Sample): number => (s.ops * 1000) / s.wallMs
export const p99Of = (s: Sample): number => quantile(s.latencies, 0.99)

export function summarize(samples: readonly Sample[]): Summary {
  const each = (f: (sample: Sample) => number): number => median(samples.map(f))
  return {
    throughput: each(throughputOf),
    p50: each((s) => quantile(s.latencies, 0.5)),
    p99: each(p99Of),
    workerBusy: each((s) => (100 * s.workerCpuMs) / s.wallMs),
    proxyBusy: each((s) => (100 * (s.proxyCpuMs ?? 0)) / s.wallMs),
    clientBusy: each((s) => (100 * s.clientCpuMs) / s.wallMs),
    clientUsPerOp: each((s) => (s.clientCpuMs * 1000) / s.ops),
    rounds: samples.length,
  }
}

export const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '–'
}

function ratio(value: number, floor: number): string {
  return fixed(value / floor, 2)
}

/**
 * Round i of `samples` over round i of `base` (both arrays hold one entry per
 * round, in round order). The two were measured seconds apart, so whatever
 * changed between rounds (other processes, the VM's share of the host) moves
 * both and cancels in the ratio.
 */
export function perRound<T>(samples: readonly T[], base: readonly T[], f: (item: T) => number): Spread {
  const ratios: number[] = []
  samples.forEach((item, round) => {
    const other = base[round]
    if (other === undefined) return
    const value = f(item) / f(other)
    if (Number.isFinite(value)) ratios.push(value)
  })
  return spread(ratios)
}

/** `1.03 (0.99–1.06)`: the median ratio with the interquartile range of the rounds' ratios. */
export function pairedCell(ratios: Spread, digits = 2): string {
  if (ratios.count === 0) return '–'
  if (ratios.count < 3) return fixed(ratios.median, digits)
  return `${fixed(ratios.median, digits)} (${fixed(ratios.q1, digits)}–${fixed(ratios.q3, digits)})`
}

export function table(head: string[], align: ('l' | 'r')[], rows: string[][]): string {
  const rule = align.map((a) => (a === 'r' ? '---:' : '---'))
  return [head, rule, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n')
}

function label(key: ServerKey): string {
  return ALL_SERVERS.find((server) => server.key === key)?.label ?? key
}

function summaries(result: ScenarioResult): Map<ServerKey, Summary> {
  const map = new Map<ServerKey, Summary>()
  for (const server of ALL_SERVERS) {
    const samples = result.samples[server.key]
    if (samples !== undefined && samples.length > 0) map.set(server.key, summarize(samples))
  }
  return map
}

function mainTable(results: Results): string {
  const rows: string[][] = []
  for (const result of results.scenarios) {
    const floor = result.samples[FLOOR]
    let first = true
    for (const [key, s] of summaries(result)) {
      const samples = result.samples[key] ?? []
      const paired = (f: (sample: Sample) => number): string =>
        floor === undefined ? '' : key === FLOOR ? '1.00' : pairedCell(perRound(samples, floor, f))
      rows.push([
        first ? `**${result.scenario.title}**` : '',
        label(key),
        pairedCell(spread(samples.map(cpuPerOp)), 1),
        paired(cpuPerOp),
        integer.format(s.throughput),
        paired(throughputOf),
        fixed(s.p50, 2),
        fixed(s.p99, 2),
        paired(p99Of),
        `${fixed(s.workerBusy, 0)} / ${fixed(s.proxyBusy, 0)} / ${fixed(s.clientBusy, 0)}`,
      ])
      first = false
    }
  }
  return table(
    [
      'scenario',
      'server',
      'worker CPU µs/op (IQR)',
      '× floor, paired (IQR)',
      'op/s',
      '× floor, paired (IQR)',
      'p50 ms',
      'p99 ms',
      '× floor, paired (IQR)',
      'CPU % worker / proxy / client',
    ],
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )
}

/**
 * How wide the interquartile range is against the median, as a percentage,
 * for the floor's own CPU per operation and for the paired CPU ratios of the
 * others: medians over the scenarios. The first is how much conditions moved
 * between rounds; the second is what is left of that after pairing.
 */
function driftAndPairing(results: Results): { floor: number; paired: number } | undefined {
  const width = (x: Spread): number => (100 * (x.q3 - x.q1)) / x.median
  const floorWidths: number[] = []
  const pairedWidths: number[] = []
  for (const result of results.scenarios) {
    const floor = result.samples[FLOOR]
    if (floor === undefined || floor.length < 3) continue
    floorWidths.push(width(spread(floor.map(cpuPerOp))))
    for (const server of ALL_SERVERS) {
      const samples = result.samples[server.key]
      if (server.key === FLOOR || samples === undefined) continue
      pairedWidths.push(width(perRound(samples, floor, cpuPerOp)))
    }
  }
  if (floorWidths.length === 0 || pairedWidths.length === 0) return undefined
  return { floor: median(floorWidths), paired: median(pairedWidths) }
}

export function mark(ok: boolean): string {
  return ok ? '✓' : '✗'
}

function targetsTable(results: Results): string {
  const rows: string[][] = []
  for (const result of results.scenarios) {
    const ours = result.samples.package
    const floor = result.samples[FLOOR]
    const party = result.samples.partyserver
    if (ours === undefined || floor === undefined) continue
    const cpu = perRound(ours, floor, cpuPerOp)
    const throughput = perRound(ours, floor, throughputOf)
    const p99 = perRound(ours, floor, p99Of)
    const vsParty = party === undefined ? undefined : perRound(ours, party, cpuPerOp)
    rows.push([
      result.scenario.title,
      `${pairedCell(cpu)} ${mark(cpu.median <= TARGET_CPU)}`,
      `${pairedCell(throughput)} ${mark(throughput.median >= TARGET_THROUGHPUT)}`,
      `${pairedCell(p99)} ${mark(p99.median <= TARGET_P99)}`,
      vsParty === undefined ? '' : `${pairedCell(vsParty)} ${mark(vsParty.median < 1)}`,
    ])
  }
  const ourWake = results.wake.package
  const floorWake = results.wake[FLOOR]
  const partyWake = results.wake.partyserver
  if (ourWake !== undefined && floorWake !== undefined) {
    const cpu = perRound(ourWake, floorWake, (w) => w.cpuMs)
    const latency = perRound(ourWake, floorWake, (w) => w.latencyMs)
    const vsParty = partyWake === undefined ? undefined : perRound(ourWake, partyWake, (w) => w.cpuMs)
    rows.push([
      `wake-up with ${integer.format(results.memory.package?.sockets ?? 0)} sockets (one message)`,
      `${pairedCell(cpu)} ${mark(cpu.median <= TARGET_CPU)}`,
      '',
      `${pairedCell(latency)} ${mark(latency.median <= TARGET_P99)} (latency)`,
      vsParty === undefined ? '' : `${pairedCell(vsParty)} ${mark(vsParty.median < 1)}`,
    ])
  }
  return table(
    [
      'scenario',
      `worker CPU/op ≤ ${String(TARGET_CPU)}× floor`,
      `throughput ≥ ${String(TARGET_THROUGHPUT)}× floor`,
      `p99 ≤ ${String(TARGET_P99)}× floor`,
      'worker CPU/op vs partyserver (< 1)',
    ],
    ['l', 'r', 'r', 'r', 'r'],
    rows,
  )
}

function ceilingTable(results: Results): string {
  const rows: string[][] = []
  for (const result of results.scenarios) {
    const loop = result.loopback
    if (loop.length === 0) continue
    const ceiling = summarize(loop)
    let fastest: { key: ServerKey; s: Summary } | undefined
    for (const [key, s] of summaries(result)) {
      if (fastest === undefined || s.throughput > fastest.s.throughput) fastest = { key, s }
    }
    rows.push([
      result.scenario.title,
      integer.format(ceiling.throughput),
      `${fixed(ceiling.clientUsPerOp, 1)} µs, ${fixed(ceiling.clientBusy, 0)} %`,
      fastest === undefined ? '' : `${integer.format(fastest.s.throughput)} (${label(fastest.key)})`,
      fastest === undefined
        ? ''
        : `${fixed(fastest.s.clientUsPerOp, 1)} µs, ${fixed(fastest.s.clientBusy, 0)} %`,
      fastest === undefined ? '' : fixed(ceiling.throughput / fastest.s.throughput, 1),
    ])
  }
  return table(
    [
      'scenario',
      'same client vs a Node loopback server, op/s',
      'client CPU per op, share of a core there',
      'fastest workerd server, op/s',
      'client CPU per op, share of a core there',
      'loopback ÷ fastest',
    ],
    ['l', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )
}

function wakeTable(results: Results): string {
  const floor = results.wake[FLOOR]
  const rows: string[][] = []
  for (const server of ALL_SERVERS) {
    const samples: WakeSample[] | undefined = results.wake[server.key]
    if (samples === undefined) continue
    const paired = (f: (sample: WakeSample) => number): string =>
      floor === undefined ? '' : server.key === FLOOR ? '1.00' : pairedCell(perRound(samples, floor, f))
    rows.push([
      server.label,
      fixed(median(samples.map((w) => w.latencyMs)), 1),
      paired((w) => w.latencyMs),
      fixed(median(samples.map((w) => w.cpuMs)), 1),
      paired((w) => w.cpuMs),
      `${String(samples.filter((w) => w.hibernated).length)} of ${String(samples.length)}`,
    ])
  }
  return table(
    [
      'server',
      'first reply after hibernation, ms',
      '× floor, paired (IQR)',
      'worker CPU for it, ms',
      '× floor, paired (IQR)',
      'object was evicted',
    ],
    ['l', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )
}

function mib(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1)
}

function memoryTable(results: Results): string {
  const floor = results.memory[FLOOR]
  const rows: string[][] = []
  for (const server of ALL_SERVERS) {
    const m = results.memory[server.key]
    if (m === undefined) continue
    const per = 1_000 / m.sockets
    const open = (m.openBytes - m.beforeBytes) * per
    rows.push([
      server.label,
      mib(m.beforeBytes),
      mib(open),
      floor === undefined ? '' : ratio(open, (floor.openBytes - floor.beforeBytes) * per),
      m.idleBytes === undefined ? '' : mib((m.idleBytes - m.beforeBytes) * per),
    ])
  }
  return table(
    [
      'server',
      'runtime RSS before, MiB',
      'RSS growth per 1,000 sockets just opened, MiB',
      '× floor',
      'RSS growth per 1,000 sockets after idling into hibernation, MiB',
    ],
    ['l', 'r', 'r', 'r', 'r'],
    rows,
  )
}

function bundleTable(bundles: readonly BundleSize[]): string {
  return table(
    ['bundle', 'built with', 'minified, bytes', 'minified + gzip, bytes'],
    ['l', 'l', 'r', 'r'],
    bundles.map((b) => [
      b.label,
      `\`${b.how}\``,
      integer.format(b.minifiedBytes),
      integer.format(b.gzipBytes),
    ]),
  )
}

/** How much CPU went to processes other than the measured ones, per span: a busy-machine gauge. */
export function backgroundLoad(results: {
  readonly scenarios: readonly { readonly samples: Partial<Record<string, readonly Sample[]>> }[]
}): { median: number; max: number } {
  const shares: number[] = []
  for (const result of results.scenarios) {
    for (const samples of Object.values(result.samples)) {
      for (const s of samples ?? []) {
        const ours = s.workerCpuMs + (s.proxyCpuMs ?? 0) + s.clientCpuMs
        shares.push((100 * Math.max(0, s.machineBusyMs - ours)) / s.wallMs)
      }
    }
  }
  return { median: median(shares), max: Math.max(...shares) }
}

/**
 * Which counter the worker CPU came from over the run's spans, and how far
 * USER_HZ utime + stime disagrees with the scheduler's ns counters, per span.
 */
function cpuClocks(results: Results): { spans: number; sched: number; agreement: number | undefined } {
  let spans = 0
  let sched = 0
  const gaps: number[] = []
  for (const result of results.scenarios) {
    for (const samples of Object.values(result.samples)) {
      for (const s of samples) {
        spans++
        if (s.workerCpuClock !== 'sched') continue
        sched++
        if (s.workerCpuMs > 0) gaps.push((100 * Math.abs(s.workerTicksMs - s.workerCpuMs)) / s.workerCpuMs)
      }
    }
  }
  return { spans, sched, agreement: gaps.length === 0 ? undefined : median(gaps) }
}

/** The scenarios measured on the same rooms in every round, for the method section. */
function keptRooms(results: Results): string {
  const kept = results.scenarios.filter((r) => !r.freshRooms).map((r) => `*${r.scenario.title}*`)
  if (kept.length === 0) return ''
  return ` The exception is ${kept.join(' and ')}: its sockets take seconds to open and its memory and wake-up are measured on them, so they are opened once and kept through every round; its object handles a few dozen incoming messages a second, too few for that growth to show.`
}

function workerCpuMethod(results: Results): string {
  const { spans, sched, agreement } = cpuClocks(results)
  const windowMs = results.settings.windowMs
  const ticks = `utime + stime from /proc/<pid>/stat, counted in USER_HZ ticks of 10 ms (at the usual 100 Hz), ${fixed((100 * 10) / windowMs, 1)} % of a ${String(windowMs / 1000)} s span`
  if (sched === 0) return `The kernel here has no scheduler ns counters, so it is ${ticks}.`
  const where =
    sched === spans
      ? 'in every span of this run'
      : `in ${String(sched)} of ${String(spans)} spans, the others falling back to utime + stime`
  return `It is the sum of the scheduler's \`se.sum_exec_runtime\` over the process's threads (/proc/<pid>/task/*/sched, in nanoseconds), ${where}; wrangler's proxy workerd is read the same way. The alternative, ${ticks}, is read beside it only as a cross-check${agreement === undefined ? '' : `; the two agree to a median ${fixed(agreement, 1)} %`}.`
}

/** The size target, with what a typical worker pulls in and what its logic alone weighs beside it. */
function ownCodeLine(own: BundleSize, bundles: readonly BundleSize[]): string {
  const imported = bundles.find((b) => b.label.startsWith('durable-websocket as a worker imports it'))
  const logic = bundles.find((b) => b.label.startsWith('the same, its logic alone'))
  const parts = [
    `Own code: ${integer.format(own.gzipBytes)} bytes minified + gzipped (every export) against a target of ${integer.format(TARGET_OWN_CODE_BYTES)} ${mark(own.gzipBytes <= TARGET_OWN_CODE_BYTES)}`,
  ]
  if (imported !== undefined) {
    parts.push(
      `; a worker that imports \`websocket\` and \`WebSocketObject\` pulls in ${integer.format(imported.gzipBytes)} ${mark(imported.gzipBytes <= TARGET_OWN_CODE_BYTES)}`,
    )
  }
  if (logic !== undefined) {
    parts.push(
      `; with every message text cut, its logic alone is ${integer.format(logic.gzipBytes)}, so shorter messages cannot reach the target: only fewer features could`,
    )
  }
  return `${parts.join('')}.`
}

export function renderResults(results: Results): string {
  const { settings, machine } = results
  const background = backgroundLoad(results)
  const drift = driftAndPairing(results)
  const servers = new Set(results.scenarios.flatMap((r) => Object.keys(r.samples))).size
  const busy = background.median > 20
  const own = results.bundles.find((b) => b.label.startsWith('durable-websocket alone'))
  const lines: string[] = []
  lines.push('# Benchmark results', '')
  lines.push(
    `durable-websocket against a hand-written Hibernation-API Durable Object (the floor) and partyserver, doing the same job under \`wrangler dev\`. Written by \`npm run bench${settings.mode === 'quick' ? ' -- --quick' : ''}\`${settings.direct ? ' with `--direct`' : ''}${settings.heartbeat ? ' with `--heartbeat`' : ''} on ${machine.date.slice(0, 10)}; it reports, it never fails on a number.`,
    '',
  )
  if (settings.mode === 'quick' || busy || settings.note !== undefined) {
    const warnings: string[] = []
    if (settings.mode === 'quick') {
      warnings.push(
        `**Quick mode**: ${String(settings.rounds)} rounds of ${String(settings.windowMs / 1000)} s and ${String(settings.wakeRounds)} wake-up; run \`npm run bench\` for the full measurement.`,
      )
    }
    if (busy) {
      warnings.push(
        `**Taken on a busy machine**: processes other than the three measured used a median ${fixed(background.median, 0)} % of one core (up to ${fixed(background.max, 0)} %) during the measured spans. Throughput and latency are unreliable here; CPU per operation less so.`,
      )
    }
    if (settings.note !== undefined) warnings.push(`**Note**: ${settings.note}`)
    lines.push(
      ...warnings
        .map((w) => `> ${w}`)
        .flatMap((w) => [w, '>'])
        .slice(0, -1),
      '',
    )
  }
  lines.push('## Machine', '')
  lines.push(
    `- ${String(machine.cpus)} CPUs (${machine.cpuModel}), ${(machine.memoryBytes / 1_073_741_824).toFixed(1)} GiB memory, ${machine.kernel}`,
    `- Node ${machine.node}, wrangler ${machine.wrangler}, workerd ${machine.workerd}, ws ${machine.ws}`,
    `- load average before ${machine.loadBefore.map((n) => n.toFixed(2)).join(' / ')}, after ${machine.loadAfter.map((n) => n.toFixed(2)).join(' / ')}; other processes used a median ${fixed(background.median, 0)} % of one core during the measured spans (max ${fixed(background.max, 0)} %)`,
    `- ${settings.mode} run, ${(settings.durationMs / 60_000).toFixed(1)} min in all`,
    '',
  )
  lines.push('## Per operation', '')
  lines.push(
    `${String(settings.rounds)} interleaved rounds. Each \`× floor\` is a paired ratio: in every round, the server's figure divided by the floor's from the same round, measured seconds before or after it; the cell is the median of those ${String(settings.rounds)} ratios, with their interquartile range (the middle half of the rounds) in parentheses. The other columns are each server's own medians over the rounds; the interquartile range beside its worker CPU is how much conditions moved between rounds. A \`× floor\` therefore need not equal the quotient of the two absolute medians beside it. Worker CPU is the runtime workerd's CPU over exactly the measured span, divided by the operations completed in it; p50 and p99 are taken within each round's span. The last column is how busy each process was over the span (100 = one core).${drift === undefined ? '' : ` Across the scenarios, the interquartile range of the floor's own CPU per operation was a median ${fixed(drift.floor, 0)} % of its value; that of the paired CPU ratios, ${fixed(drift.paired, 0)} %.`} ${settings.control ? 'The *raw again (A/A control)* rows are a second, identical copy of the floor under its own wrangler dev: their paired ratios’ distance from 1.00 and their spread are the noise of this run, and differences smaller than that are not resolved.' : 'This run had no A/A control (a second copy of the floor that shows the noise of the run; `-- --control` adds it, the full run has it).'}`,
    '',
    mainTable(results),
    '',
  )
  lines.push('## Targets from issue 6 (reported, not asserted)', '', targetsTable(results), '')
  lines.push(
    `Each cell pairs durable-websocket with the floor (the last column: with partyserver) round by round, as \`× floor\` above does: the median of the per-round ratios, with their interquartile range in parentheses; ✓ or ✗ compares that median with the target. The wake-up row pairs the ${String(settings.wakeRounds)} wake-up round(s) the same way.${settings.control ? ' Read each against the A/A control above: a median nearer the target than the control’s is to 1.00 is not resolved.' : ''}`,
    '',
  )
  if (own !== undefined) lines.push(ownCodeLine(own, results.bundles), '')
  lines.push('## Wake-up and memory with 1,000 sockets', '', wakeTable(results), '', memoryTable(results), '')
  lines.push(
    `Each server holds ${integer.format(results.memory.package?.sockets ?? 0)} idle sockets; after ${String(settings.idleMs / 1000)} s without events wrangler dev evicts the object, and one socket sends one echo message. In each of ${String(settings.wakeRounds)} wake-up round(s) every server is woken once, one after another in a rotating order; the absolute columns are medians over the rounds, and \`× floor\` is the median of the per-round ratios to the floor, with their interquartile range. RSS (VmRSS of the runtime workerd) is read before the sockets are opened, 1 s after, and again after the idle wait; it includes whatever the allocator has not handed back, so read it as an order of magnitude.`,
    '',
  )
  lines.push('## Is the client the bottleneck?', '', ceilingTable(results), '')
  lines.push(
    'The same client against a plain Node `ws` server with the same behaviour (bench/lib/loopbackServer.ts, its own process, no workerd), one round: where it drives far more operations per second than any workerd server, the client is not what limits the numbers above. With one connection the rate is bound by the round-trip time rather than by anyone’s CPU, so there the client’s share of a core (well below one) is the better sign. The client CPU columns are the load client’s own CPU per operation and its share of one core.',
    '',
  )
  lines.push('## Bundle size', '', bundleTable(results.bundles), '')
  lines.push(
    'The three workers are the bench servers themselves, as `wrangler deploy` would upload them; the library rows bundle the entry point alone, so every export counts.',
    '',
  )
  lines.push('## Method', '')
  lines.push(
    '- **Servers** (bench/servers/): one worker each, each with its own wrangler.toml (compatibility date 2026-10-23, SQLite-backed Durable Object), doing the same job (bench/servers/behaviour.ts): a JSON text message is answered with `{ "received": message }`; `{ "broadcast": n }` makes the object send `{ "seq": i }` n times to every socket in the room; connection ids come from a durable counter in storage; the open handler stores per-connection data (`{ joined }`) in the socket attachment. `package` uses this package through its public API (`websocket()`, `add()`, `mount()` with itty-router, `conn.manager.broadcast`); `raw` is a hand-written object on the Hibernation API (`acceptWebSocket`, `serializeAttachment`, a loop over `getWebSockets()`); `partyserver` is a `Server` subclass with `static options = { hibernate: true }` behind `routePartykitRequest`, keeping the id and data with `connection.setState`. The A/A control, when on, is a second copy of `raw`.',
    settings.heartbeat
      ? '- **Heartbeat**: this run kept the package’s default heartbeat (`ping` answered `pong` by the runtime, without waking the object), which neither the floor nor partyserver has: the runtime matches every incoming message against it, and the rows show what that costs.'
      : '- **Heartbeat**: the package server runs with `heartbeat: false`, since neither the floor nor partyserver answers pings. Its default (`ping` answered `pong` by the runtime) has the runtime match every incoming message against the ping text; `-- --heartbeat` measures the package with it.',
    '- **Runtime**: each server runs under its own `wrangler dev` (`--ip 127.0.0.1 --port 0 --inspector-port 0 --persist-to <dir>`), in its own process group, stopped with SIGTERM then SIGKILL at the end. **`X_LOCAL_OBSERVABILITY=false`**: wrangler traces every invocation locally by default, which by itself triples the worker’s CPU per message and hides every difference between the servers.',
    settings.state === 'memory'
      ? '- **Storage**: each `wrangler dev` keeps its objects’ SQLite files in memory (`/dev/shm`). workerd keeps local storage in WAL mode with SQLite’s default sync, so every commit ends in an fsync, and on this machine’s disk the kernel’s share of that fsync, counted in the runtime’s CPU, outweighs the commit itself (the durable floor of the sessions section shows it: measured on disk as well). A run with `-- --state disk` keeps them on disk, as a developer’s `wrangler dev` does.'
      : '- **Storage**: each `wrangler dev` keeps its objects’ SQLite files on disk (`--state disk`), as a developer’s `wrangler dev` does, so every commit of an object’s storage includes an fsync of the machine’s disk.',
    `- **Client**: Node with \`ws\` ${machine.ws}, permessage-deflate off, one process for all servers, ${settings.direct ? "connected straight to the runtime workerd's own port (`--direct`), bypassing wrangler's proxy." : "connected to wrangler's public port, so every frame also passes wrangler's proxy workerd. [RESULTS-direct.md](RESULTS-direct.md) is a run that bypasses the proxy (`npm run bench -- --direct --out bench/RESULTS-direct.md`)."}`,
    `- **Rounds**: each scenario is measured in ${String(settings.rounds)} rounds. In each round every server is measured once, one after another, in an order that rotates from round to round (A B C, B C A, C A B, …)${settings.rounds % servers === 0 ? `; ${String(settings.rounds)} rounds are whole rotations, so each server is measured in each place equally often` : ''}. A measurement opens the scenario's sockets in rooms of its own (a room name no earlier measurement used, so a new Durable Object), runs the load for ${String(settings.warmupMs)} ms of warm-up, then a measured span of ${String(settings.windowMs)} ms, and closes the sockets; one round takes a few seconds (${fixed((servers * (settings.warmupMs + settings.windowMs)) / 1000, 0)} s of load), so the servers in it are measured seconds apart. A new object each time, because under wrangler dev an object's CPU per message grows with every message it has handled since it was constructed (about doubling over 100,000 echoes) and falls back when it is evicted: an object kept across rounds would be measured at an age that depends on its own throughput and on whether it happened to be evicted between rounds.${keptRooms(results)}`,
    `- **Ratios**: every ratio in the tables is a median of per-round paired ratios. For worker CPU per operation, operations per second and p99, each round's figure of a server is divided by the floor's figure from the same round, and the table shows the median of those ratios with their interquartile range. Conditions move between rounds (other processes on a 2-core VM, the VM's share of its host) by more than the differences sought here; servers measured seconds apart share them, so they cancel in their ratio, which they do not in a ratio of two medians taken over the whole run. The interquartile range is the spread of single rounds; the median of n rounds is known more tightly, to roughly ±1.58 × IQR ÷ √n (the notch of a box plot).${settings.control ? ' The A/A control, a second copy of the floor, is paired with the floor the same way: its ratios are what the method resolves on this machine.' : ''}`,
    `- **Worker CPU**: the runtime workerd is the one wrangler starts with \`--inspector-addr\` (the other is the proxy); its CPU is read at the start and the end of the measured span, and the difference over the operations completed in the span is the CPU per operation. It includes the Worker that routes upgrades and wrangler's entry worker inside the runtime, the same for all. ${workerCpuMethod(results)} The wake-up span is only milliseconds long; its CPU comes from the same ns counters.`,
    '- **Scenarios**:',
    ...results.scenarios.map((r) => `  - *${r.scenario.title}* — ${r.scenario.description}`),
    `  - *wake-up* — ${integer.format(results.memory.package?.sockets ?? 0)} sockets attached and the object idle for ${String(settings.idleMs / 1000)} s, so wrangler dev evicts it; then one socket sends one echo. The time to its reply and the runtime's CPU over it are the wake-up cost. The Durable Object constructors count themselves in a module-scope counter that outlives the evicted object, read through the Worker's \`GET /health\` (which touches no object), so each wake-up is checked to have really constructed the object again.`,
    '  - *memory* — RSS growth of the runtime workerd when the 1,000 sockets are opened, scaled to 1,000 sockets.',
    '- **Bundle size**: `wrangler deploy --dry-run --minify --outdir <tmp>` for each worker, `worker.js` gzipped with zlib level 9; the library rows use esbuild (the version wrangler ships) with `--bundle --minify` and the given externals. *As a worker imports it* bundles a module that re-exports only `websocket` and `WebSocketObject`, so what a worker never imports (`allowOrigins`, the error guards) is shaken out. The *logic alone* row is a diagnostic, not a build anyone ships: the same bundle with every string literal over 24 characters (error messages, log lines, response bodies) cut to a short placeholder.',
    '- **Profiles**: `npm run bench:profile -- --server package` (or `raw`, `partyserver`) runs one server under a closed-loop echo (`--broadcast`: broadcasts) and prints the self time of each function from the V8 CPU profiler, sampled every 50 µs through the inspector of wrangler dev; `--client session` speaks the session protocol, `--save file` keeps the whole profile. It found the per-message costs removed so far (an attachment write per message, a readyState read and a global lookup before every send); what is left is a few microseconds per message, and the profile attributes it differently from run to run, so the paired CPU ratios above are the measure.',
    `- Reproduce: \`npm run bench\` (about 17 min for this part, with the A/A control, then about 6 for the sessions section and 2 for the abuse section) or \`npm run bench -- --quick\` (about 3 min for this part, without the control, then a brief sessions section of about a minute and the abuse section). \`-- --control\` / \`-- --no-control\` force the control on or off, \`-- --direct\` measures the runtime workerd's own port instead of wrangler's proxy, \`-- --heartbeat\` keeps the package's default heartbeat, \`-- --no-sessions\` leaves out the sessions section (\`-- --sessions\` runs it alone, into RESULTS-sessions.md), \`-- --no-abuse\` leaves out the abuse section (\`-- --abuse\` runs it alone, into RESULTS-abuse.md), \`-- --note "…"\` adds a note here.`,
    '',
  )
  return lines.join('\n')
}
