import type { BundleSize } from './bundleSize.ts'
import type { Sample } from './measure.ts'
import type { Results, ScenarioResult, WakeSample } from './results.ts'
import { ALL_SERVERS, FLOOR, type ServerKey } from './servers.ts'
import { median, quantile } from './stats.ts'

/** The issue's targets for this package, against the floor. Reported, never asserted. */
const TARGET_CPU = 1.05
const TARGET_THROUGHPUT = 0.95
const TARGET_P99 = 1.1
const TARGET_OWN_CODE_BYTES = 3_000

interface Summary {
  cpuUsPerOp: number
  throughput: number
  p50: number
  p99: number
  workerBusy: number
  proxyBusy: number
  clientBusy: number
  clientUsPerOp: number
  rounds: number
}

function summarize(samples: readonly Sample[]): Summary {
  const each = (f: (sample: Sample) => number): number => median(samples.map(f))
  return {
    cpuUsPerOp: each((s) => (s.workerCpuMs * 1000) / s.ops),
    throughput: each((s) => (s.ops * 1000) / s.wallMs),
    p50: each((s) => quantile(s.latencies, 0.5)),
    p99: each((s) => quantile(s.latencies, 0.99)),
    workerBusy: each((s) => (100 * s.workerCpuMs) / s.wallMs),
    proxyBusy: each((s) => (100 * (s.proxyCpuMs ?? 0)) / s.wallMs),
    clientBusy: each((s) => (100 * s.clientCpuMs) / s.wallMs),
    clientUsPerOp: each((s) => (s.clientCpuMs * 1000) / s.ops),
    rounds: samples.length,
  }
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '–'
}

function ratio(value: number, floor: number): string {
  return fixed(value / floor, 2)
}

function table(head: string[], align: ('l' | 'r')[], rows: string[][]): string {
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
    const all = summaries(result)
    const floor = all.get(FLOOR)
    let first = true
    for (const [key, s] of all) {
      rows.push([
        first ? `**${result.scenario.title}**` : '',
        label(key),
        fixed(s.cpuUsPerOp, 1),
        floor === undefined ? '' : ratio(s.cpuUsPerOp, floor.cpuUsPerOp),
        integer.format(s.throughput),
        floor === undefined ? '' : ratio(s.throughput, floor.throughput),
        fixed(s.p50, 2),
        fixed(s.p99, 2),
        floor === undefined ? '' : ratio(s.p99, floor.p99),
        `${fixed(s.workerBusy, 0)} / ${fixed(s.proxyBusy, 0)} / ${fixed(s.clientBusy, 0)}`,
      ])
      first = false
    }
  }
  return table(
    [
      'scenario',
      'server',
      'worker CPU µs/op',
      '× floor',
      'op/s',
      '× floor',
      'p50 ms',
      'p99 ms',
      '× floor',
      'CPU % worker / proxy / client',
    ],
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )
}

function mark(ok: boolean): string {
  return ok ? '✓' : '✗'
}

function targetsTable(results: Results): string {
  const rows: string[][] = []
  for (const result of results.scenarios) {
    const all = summaries(result)
    const ours = all.get('package')
    const floor = all.get(FLOOR)
    const party = all.get('partyserver')
    if (ours === undefined || floor === undefined) continue
    const cpu = ours.cpuUsPerOp / floor.cpuUsPerOp
    const throughput = ours.throughput / floor.throughput
    const p99 = ours.p99 / floor.p99
    rows.push([
      result.scenario.title,
      `${fixed(cpu, 2)} ${mark(cpu <= TARGET_CPU)}`,
      `${fixed(throughput, 2)} ${mark(throughput >= TARGET_THROUGHPUT)}`,
      `${fixed(p99, 2)} ${mark(p99 <= TARGET_P99)}`,
      party === undefined
        ? ''
        : `${fixed(ours.cpuUsPerOp / party.cpuUsPerOp, 2)} ${mark(ours.cpuUsPerOp < party.cpuUsPerOp)}`,
    ])
  }
  const wake = results.wake
  const ourWake = wake.package
  const floorWake = wake[FLOOR]
  const partyWake = wake.partyserver
  if (ourWake !== undefined && floorWake !== undefined) {
    const cpu = median(ourWake.map((w) => w.cpuMs)) / median(floorWake.map((w) => w.cpuMs))
    const latency = median(ourWake.map((w) => w.latencyMs)) / median(floorWake.map((w) => w.latencyMs))
    rows.push([
      `wake-up with ${integer.format(results.memory.package?.sockets ?? 0)} sockets (one message)`,
      `${fixed(cpu, 2)} ${mark(cpu <= TARGET_CPU)}`,
      '',
      `${fixed(latency, 2)} ${mark(latency <= TARGET_P99)} (latency)`,
      partyWake === undefined
        ? ''
        : `${fixed(median(ourWake.map((w) => w.cpuMs)) / median(partyWake.map((w) => w.cpuMs)), 2)} ${mark(median(ourWake.map((w) => w.cpuMs)) < median(partyWake.map((w) => w.cpuMs)))}`,
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
    const latency = median(samples.map((w) => w.latencyMs))
    const cpu = median(samples.map((w) => w.cpuMs))
    rows.push([
      server.label,
      fixed(latency, 1),
      floor === undefined ? '' : ratio(latency, median(floor.map((w) => w.latencyMs))),
      fixed(cpu, 1),
      floor === undefined ? '' : ratio(cpu, median(floor.map((w) => w.cpuMs))),
      `${String(samples.filter((w) => w.hibernated).length)} of ${String(samples.length)}`,
    ])
  }
  return table(
    [
      'server',
      'first reply after hibernation, ms',
      '× floor',
      'worker CPU for it, ms',
      '× floor',
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

/** How much CPU went to processes other than the three measured, per span: a busy-machine gauge. */
function backgroundLoad(results: Results): { median: number; max: number } {
  const shares: number[] = []
  for (const result of results.scenarios) {
    for (const samples of Object.values(result.samples)) {
      for (const s of samples) {
        const ours = s.workerCpuMs + (s.proxyCpuMs ?? 0) + s.clientCpuMs
        shares.push((100 * Math.max(0, s.machineBusyMs - ours)) / s.wallMs)
      }
    }
  }
  return { median: median(shares), max: Math.max(...shares) }
}

/** How far USER_HZ utime+stime and the scheduler's ns counters disagree, per span. */
function tickAgreement(results: Results): number | undefined {
  const gaps: number[] = []
  for (const result of results.scenarios) {
    for (const samples of Object.values(result.samples)) {
      for (const s of samples) {
        if (s.workerCpuPreciseMs !== undefined && s.workerCpuPreciseMs > 0) {
          gaps.push((100 * Math.abs(s.workerCpuMs - s.workerCpuPreciseMs)) / s.workerCpuPreciseMs)
        }
      }
    }
  }
  return gaps.length === 0 ? undefined : median(gaps)
}

export function renderResults(results: Results): string {
  const { settings, machine } = results
  const background = backgroundLoad(results)
  const agreement = tickAgreement(results)
  const busy = background.median > 20
  const own = results.bundles.find((b) => b.label.startsWith('durable-websocket alone'))
  const lines: string[] = []
  lines.push('# Benchmark results', '')
  lines.push(
    `durable-websocket against a hand-written Hibernation-API Durable Object (the floor) and partyserver, doing the same job under \`wrangler dev\`. Written by \`npm run bench${settings.mode === 'quick' ? ' -- --quick' : ''}\`${settings.direct ? ' with `--direct`' : ''} on ${machine.date.slice(0, 10)}; it reports, it never fails on a number.`,
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
    `Medians over ${String(settings.rounds)} interleaved rounds; \`× floor\` is the ratio to the hand-written object. Worker CPU is the runtime workerd's utime + stime over exactly the measured span, divided by the operations completed in it; it moves far less between rounds than throughput does. The last column is how busy each process was over the span (100 = one core). ${settings.control ? 'The *raw again (A/A control)* rows are a second, identical copy of the floor under its own wrangler dev: their distance from 1.00 is the noise of this run, and differences smaller than that are not resolved.' : 'This run had no A/A control (a second copy of the floor that shows the noise of the run; `-- --control` adds it, the full run has it).'}`,
    '',
    mainTable(results),
    '',
  )
  lines.push('## Targets from issue 6 (reported, not asserted)', '', targetsTable(results), '')
  if (own !== undefined) {
    lines.push(
      `Own code: ${integer.format(own.gzipBytes)} bytes minified + gzipped against a target of ${integer.format(TARGET_OWN_CODE_BYTES)} ${mark(own.gzipBytes <= TARGET_OWN_CODE_BYTES)}.`,
      '',
    )
  }
  lines.push('## Wake-up and memory with 1,000 sockets', '', wakeTable(results), '', memoryTable(results), '')
  lines.push(
    `Each server holds ${integer.format(results.memory.package?.sockets ?? 0)} idle sockets; after ${String(settings.idleMs / 1000)} s without events wrangler dev evicts the object, and one socket sends one echo message. Medians of ${String(settings.wakeRounds)} wake-up(s). RSS (VmRSS of the runtime workerd) is read before the sockets are opened, 1 s after, and again after the idle wait; it includes whatever the allocator has not handed back, so read it as an order of magnitude.`,
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
    '- **Runtime**: each server runs under its own `wrangler dev` (`--ip 127.0.0.1 --port 0 --inspector-port 0 --persist-to <tmp>`), in its own process group, stopped with SIGTERM then SIGKILL at the end. **`X_LOCAL_OBSERVABILITY=false`**: wrangler traces every invocation locally by default, which by itself triples the worker’s CPU per message and hides every difference between the servers.',
    `- **Client**: Node with \`ws\` ${machine.ws}, permessage-deflate off, one process for all servers, ${settings.direct ? "connected straight to the runtime workerd's own port (`--direct`), bypassing wrangler's proxy." : "connected to wrangler's public port, so every frame also passes wrangler's proxy workerd."}`,
    `- **Rounds**: every scenario is set up on all servers, then measured in ${String(settings.rounds)} rounds that interleave them, rotating the order (A B C, B C A, C A B, …) so drift hits all alike. Each measurement runs the load for ${String(settings.warmupMs)} ms of warm-up, then a measured span of ${String(settings.windowMs)} ms. Tables show the median of the rounds; p50/p99 are taken within each round, then the median of those.`,
    `- **Worker CPU**: the runtime workerd is the one wrangler starts with \`--inspector-addr\` (the other is the proxy). Its utime + stime from /proc/<pid>/stat are read at the start and the end of the measured span; the difference over the operations completed in the span is the CPU per operation. It includes the Worker that routes upgrades and wrangler's entry worker inside the runtime, the same for all three. USER_HZ is 100, so a span of ${String(settings.windowMs / 1000)} s reads to within 10 ms${agreement === undefined ? '' : `; the scheduler's ns counters (/proc/<pid>/task/*/sched) agree with it to a median ${fixed(agreement, 1)} %`}. The wake-up span is only milliseconds long, so its CPU comes from those ns counters.`,
    '- **Scenarios**:',
    ...results.scenarios.map((r) => `  - *${r.scenario.title}* — ${r.scenario.description}`),
    `  - *wake-up* — ${integer.format(results.memory.package?.sockets ?? 0)} sockets attached and the object idle for ${String(settings.idleMs / 1000)} s, so wrangler dev evicts it; then one socket sends one echo. The time to its reply and the runtime's CPU over it are the wake-up cost. The Durable Object constructors count themselves in a module-scope counter that outlives the evicted object, read through the Worker's \`GET /health\` (which touches no object), so each wake-up is checked to have really constructed the object again.`,
    '  - *memory* — RSS growth of the runtime workerd when the 1,000 sockets are opened, scaled to 1,000 sockets.',
    '- **Bundle size**: `wrangler deploy --dry-run --minify --outdir <tmp>` for each worker, `worker.js` gzipped with zlib level 9; the library rows use esbuild (the version wrangler ships) with `--bundle --minify` and the given externals.',
    `- Reproduce: \`npm run bench\` (about 15 min; with the A/A control) or \`npm run bench -- --quick\` (under 3 min; without it). \`-- --control\` / \`-- --no-control\` force the control on or off, \`-- --direct\` measures the runtime workerd's own port instead of wrangler's proxy, \`-- --note "…"\` adds a note here.`,
    '',
  )
  return lines.join('\n')
}
