import { fixed, integer, mark, table } from './report.ts'
import { median } from './stats.ts'
import {
  LOADS,
  TARGET_RATIO,
  descriptorsFor,
  type Restart,
  type StormLoad,
  type StormResults,
  type StormSize,
} from './storm.ts'
import type { FloorStorm } from './stormFloor.ts'

const RESTART_TITLES: Record<Restart, string> = {
  object: "the room's object reset (a deploy)",
  runtime: 'the runtime SIGKILLed and restarted',
}

const LOAD_TITLES: Record<StormLoad, string> = {
  busy: 'a busy room',
  quiet: 'a quiet room',
}

/** The runs of one load, size and drop, in the order they ran. */
interface Group {
  readonly load: StormLoad
  readonly clients: number
  readonly restart: Restart
  readonly runs: StormSize[]
}

function groups(runs: readonly StormSize[]): Group[] {
  const found = new Map<string, Group>()
  for (const run of runs) {
    const key = `${run.load} ${String(run.clients)} ${run.restart}`
    const group = found.get(key) ?? { load: run.load, clients: run.clients, restart: run.restart, runs: [] }
    group.runs.push(run)
    found.set(key, group)
  }
  return [...found.values()]
}

/** The median of some ratios, with their range when there are several; a ratio that never came (Infinity) shows as '—'. */
function ratioRange(ratios: readonly number[]): string {
  const middle = median(ratios)
  if (!Number.isFinite(middle)) return '—'
  const high = Math.max(...ratios)
  const range =
    ratios.length > 1
      ? ` (${fixed(Math.min(...ratios), 2)}–${Number.isFinite(high) ? fixed(high, 2) : '—'})`
      : ''
  return `${fixed(middle, 2)}${range}`
}

/** {@link ratioRange}, marked against the target. */
function markedRatio(ratios: readonly number[]): string {
  const text = ratioRange(ratios)
  return text === '—' ? text : `${text} ${mark(median(ratios) <= TARGET_RATIO)}`
}

/** The median ratio of a group's runs with its range, marked against the target; a run that never got there counts as past it. */
function medianRatio(runs: readonly StormSize[], ms: (run: StormSize) => number | undefined): string {
  return markedRatio(
    runs.map((run) => {
      const value = ms(run)
      return value === undefined || !(run.openMs > 0) ? Infinity : value / run.openMs
    }),
  )
}

/** The floor's median back ÷ open for a load and size, with its range; '—' where it did not run. */
function floorRatio(floor: readonly FloorStorm[], load: StormLoad, clients: number): string {
  return markedRatio(
    floor.filter((f) => f.load === load && f.clients === clients).map((f) => f.backMs / f.openMs),
  )
}

/** One row per load, size and drop: the ratios the target is about, medians of the runs, and the floor's beside a deploy's. */
function summaryTable(all: readonly Group[], floor: readonly FloorStorm[]): string {
  return table(
    [
      'load',
      'clients',
      'drop',
      'runs',
      'first open (s), median',
      'caught up (s), median',
      'back ÷ open (range)',
      'caught up ÷ open (range)',
      'floor: back ÷ open (range)',
      'resets, duplicates, gaps',
    ],
    ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    all.map(({ load, clients, restart, runs }) => [
      load,
      integer.format(clients),
      restart === 'object' ? 'deploy (object reset)' : 'runtime SIGKILLed',
      String(runs.length),
      seconds(median(runs.map((run) => run.openMs))),
      seconds(median(runs.map((run) => run.caughtUpMs ?? Infinity))),
      medianRatio(runs, (run) => run.backMs),
      medianRatio(runs, (run) => run.caughtUpMs),
      restart === 'object' ? floorRatio(floor, load, clients) : '—',
      (['resets', 'duplicates', 'gaps'] as const)
        .map((count) => integer.format(runs.reduce((sum, run) => sum + run[count], 0)))
        .join(', '),
    ]),
  )
}

function seconds(ms: number | undefined): string {
  return ms === undefined || Number.isNaN(ms) ? '—' : fixed(ms / 1000, 1)
}

function ratio(ms: number | undefined, openMs: number): string {
  if (ms === undefined || !(openMs > 0)) return '—'
  const r = ms / openMs
  return `${fixed(r, 2)} ${mark(r <= TARGET_RATIO)}`
}

function mib(bytes: number): string {
  return bytes > 0 ? fixed(bytes / 1_048_576, 0) : '—'
}

function sizeTable(runs: readonly StormSize[]): string {
  return table(
    [
      'clients',
      'first open (s)',
      'down (s)',
      'first back (s)',
      'median back (s)',
      'back after restart (s)',
      'caught up (s)',
      'back ÷ open',
      'caught up ÷ open',
      'peak RSS before / after the drop (MiB)',
      'proxy peak RSS (MiB)',
      'runtime CPU %: open / stream / recovery',
      'client CPU % (recovery)',
      'resumed',
      'resets',
      'duplicates',
      'gaps',
    ],
    ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    runs.map((run) => [
      integer.format(run.clients),
      seconds(run.openMs),
      seconds(run.downMs),
      seconds(run.firstBackMs),
      seconds(run.medianBackMs),
      seconds(run.backMs),
      seconds(run.caughtUpMs),
      ratio(run.backMs, run.openMs),
      ratio(run.caughtUpMs, run.openMs),
      `${mib(run.peakBeforeBytes)} / ${mib(run.peakAfterBytes)}`,
      mib(run.peakProxyBytes),
      [run.runtimeCpuPercent.open, run.runtimeCpuPercent.stream, run.runtimeCpuPercent.recovery]
        .map((percent) => (percent === undefined ? '—' : fixed(percent, 0)))
        .join(' / '),
      run.clientCpuPercent === undefined ? '—' : fixed(run.clientCpuPercent, 0),
      `${integer.format(run.resumed)} of ${integer.format(run.clients + 1)}`,
      integer.format(run.resets),
      integer.format(run.duplicates),
      integer.format(run.gaps),
    ]),
  )
}

/** The floor's storm, per load and size: medians over the rounds. */
function floorTable(floor: readonly FloorStorm[]): string {
  const keys = [...new Set(floor.map((f) => `${f.load} ${String(f.clients)}`))]
  return table(
    [
      'load',
      'clients',
      'runs',
      'open (s)',
      'reset call (s)',
      'every connection closed (s)',
      'every connection back (s)',
      'reset call ÷ open (range)',
      'back ÷ open (range)',
      'runtime CPU % (stream)',
    ],
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    keys.map((key) => {
      const runs = floor.filter((f) => `${f.load} ${String(f.clients)}` === key)
      const first = runs[0]
      const cpu = runs.flatMap((f) => (f.streamCpuPercent === undefined ? [] : [f.streamCpuPercent]))
      return [
        first?.load ?? '—',
        integer.format(first?.clients ?? 0),
        String(runs.length),
        seconds(median(runs.map((f) => f.openMs))),
        seconds(median(runs.map((f) => f.resetMs))),
        seconds(median(runs.map((f) => f.closedMs))),
        seconds(median(runs.map((f) => f.backMs))),
        ratioRange(runs.map((f) => f.resetMs / f.openMs)),
        ratioRange(runs.map((f) => f.backMs / f.openMs)),
        cpu.length === 0 ? '—' : fixed(median(cpu), 0),
      ]
    }),
  )
}

/** The section as a document of its own (`--storm`). */
export function renderStorm(results: StormResults): string {
  const m = results.machine
  const lines: string[] = []
  lines.push('# A deploy storm: how long a room takes to come back', '')
  lines.push(
    `Measured by \`npm run bench -- ${results.mode === 'quick' ? '--quick ' : ''}--storm${results.customSizes ? ` --storm-sizes ${results.sizes.join(',')}` : ''}\` on ${results.date.slice(0, 10)} at commit ${results.commit}${results.srcDirty ? ' (with uncommitted changes in src/)' : ''}, under \`wrangler dev\` ${results.direct ? "on the runtime workerd's own port" : "through wrangler's proxy (`--storm-proxy`)"}, for ${results.sizes.map((n) => integer.format(n)).join(' and ')} clients${results.customSizes ? ' (a trial at sizes other than the defaults)' : ''}. Figures, not assertions. Load average before ${results.loadBefore.map((n) => n.toFixed(2)).join(' / ')}, after ${results.loadAfter.map((n) => n.toFixed(2)).join(' / ')}; ${(results.durationMs / 60_000).toFixed(1)} min in all.`,
    '',
    `Machine: ${String(m.cpus)} × ${m.cpuModel}, ${fixed(m.memoryBytes / 1_073_741_824, 1)} GiB, ${m.kernel}; Node ${m.node}, wrangler ${m.wrangler}, workerd ${m.workerd}, ws ${m.ws}. Open files: soft limit ${results.fdLimit.soft}, hard ${results.fdLimit.hard} (the largest size needs about ${integer.format(descriptorsFor(Math.max(...results.sizes), results.direct))} in ${results.direct ? 'the runtime workerd' : "wrangler's proxy workerd"}). Objects' storage ${results.state === 'memory' ? 'in memory (`/dev/shm`)' : 'on disk'}.`,
    '',
  )
  lines.push(
    `Target (reported, not asserted): every session back and caught up in ≤ ${String(TARGET_RATIO)}× the time of the room's first open, at both sizes. ✓ or ✗ beside each ratio.`,
    '',
  )
  const all = groups(results.runs)
  lines.push(summaryTable(all, results.floor), '')
  if (results.floor.length > 0)
    lines.push(
      "The same deploy on the bench's floor, without the package: a hand-written Hibernation-API object (bench/servers/raw) writing one SQLite row per frame it sends (the durable floor), the same number of plain connections of the package's client (the same backoff), the same load, reset the same way. Its times are the runtime's and the load's with no session at all: the reset's teardown, an accept per client, the stream beside them. *Floor: back ÷ open* above is its figure for the same load and size; a deploy's *caught up ÷ open* cannot be much below it.",
      '',
      floorTable(results.floor),
      '',
    )
  for (const { load, clients, restart, runs } of all) {
    lines.push(
      `## ${integer.format(clients)} clients in ${LOAD_TITLES[load]}, ${RESTART_TITLES[restart]}`,
      '',
      sizeTable(runs),
      '',
    )
    lines.push(
      `Per run, broadcasts of ~1 KB sent, each to every client: ${runs.map((run) => integer.format(run.broadcastsSent)).join(', ')}; client messages accepted by the clients' queues: ${runs.map((run) => integer.format(run.clientMessagesSent)).join(', ')}.`,
      '',
    )
    const problems = runs.flatMap((run) => run.problems)
    if (problems.length > 0) lines.push(`Problems: ${problems.map((p) => `\`${p}\``).join('; ')}.`, '')
  }
  lines.push(
    '## Method',
    '',
    `For each size and each way of dropping the room, a \`wrangler dev\` of the chaos fixture (test/e2e/fixtures/chaos: one room that broadcasts what it is asked to, to everyone, and records every message in its SQLite storage), on the worker bundled once up front. N session clients of the package's own client (src/client, on \`ws\`, with their default backoff) and one broadcaster dial one room at once, on the runtime workerd's own port (a new one after a runtime restart, which the clients' WebSocket follows; \`--storm-proxy\` goes through wrangler's proxy workerd instead, which holds about four descriptors per socket and, under a limit of 20,000, cannot carry 5,000); *first open* runs from the first dial to every one of them open. The broadcaster then sends \`{ b, p }\` with 1,000 bytes of padding, which the room broadcasts to all, and the clients send numbered messages, at the same room-wide load at every size. *Busy*: ${integer.format(LOADS.busy.deliveriesPerS)} frames of ~1 KB a second from the broadcasts (10 broadcasts a second to 1,000 clients, 2 to 5,000) and ${integer.format(LOADS.busy.clientMessagesPerS)} client messages a second (each of 1,000 clients one every 2 s, each of 5,000 one every 10 s). *Quiet*: ${integer.format(LOADS.quiet.deliveriesPerS)} frames and ${integer.format(LOADS.quiet.clientMessagesPerS)} client messages a second. The two part what a recovery costs by itself from what the stream, which goes on through it, takes from the same thread: a first open meets a room where nothing is sent yet. One object is one thread, and a load that grows with the room would keep it past its capacity before the drop (each of 5,000 sending every 2 s was 2,500 commits and 50,000 frames a second, and the reset call then waited minutes behind the backlog): the storm measures the recovery, not a backlog. After 3 s of that every socket of the room drops at once, in one of two ways. **A deploy**: the room's object is reset (\`ctx.abort()\` through the fixture's \`POST /rooms/<room>/restart\`), which is what a deploy or a runtime update does to an object on Cloudflare: every socket drops, memory is gone, storage stays, and the next request starts a new instance while the runtime stays up; *down* is the reset call's own time (the runtime tears the sockets down), and the times below run from the reset's request, so they include it. **A runtime restart**: the runtime's whole process group (wrangler and both workerd) is SIGKILLed, and \`wrangler dev\` is started again on the same \`--persist-to\` state and the same port; *down* runs from the SIGKILL to it being ready again (wrangler's start, not the package's work), and meanwhile every attempt a client makes is refused, so its backoff grows: with full jitter, the last of many clients waits out nearly the whole ceiling its backoff reached, which is of the order of the time the runtime was gone, whatever the server does once it is back. The stream goes on through both: what the clients send waits in their queues. *First back* runs from ready again (from the reset's request, for a deploy) to the first session open again; *median back* is the middle session's. *Back after restart* runs from ready again to every session open a second time; *caught up* from ready again to every client holding the newest broadcast the broadcaster had sent when all were back (delivery is in order, so holding it means holding every broadcast before it, the replayed ones included; until 2026-12-04 it was the next broadcast after that, which a quiet room sends up to a second later). The ratios divide those by *first open*; *down* is in neither. *Runtime CPU* is the runtime workerd's, in % of one core (an object runs on one thread, so near 100 % the object is the bottleneck): over the first open, over the last 2 s of the stream before the drop (the share of the thread the room's load takes, which a recovery cannot have), and from the drop (a deploy) or ready again (a restart) to caught up. *Client CPU* is the bench process's (all the clients run in it, on one core) from ready again to caught up: near 100 % the clients, not the server, set the pace. Peak RSS is the runtime workerd's, sampled every 200 ms from the first dial to the drop (*before*) and from ready again to every client caught up (*after*); the proxy's over both. *Resumed* counts the sessions whose open after the drop was a resume (the broadcaster included); *resets* are sessions the server no longer knew, *duplicates* broadcasts received twice or out of order, *gaps* broadcasts a client never received: all three should be 0. Every phase is bounded (180 s per run); a run that does not recover says so under its table. Each round first runs, for each load and size, the same deploy on the bench's floor (bench/servers/raw with \`BENCH_DURABLE=on\`): the package's client in plain mode (\`session: false\`, default backoff), dialled at once on the runtime's own port, the same load (the broadcaster's \`{ broadcast: 1, pad: 1000 }\` makes the floor send ~1 KB to every socket; a client's \`{ n }\` gets an echo, each frame sent also written to SQLite), then the same reset, timed from its request to the call's answer, to every client seeing its connection closed and to every client open again; and the runtime's CPU over the same end of the stream. Then every load, size and drop once; the rounds repeat that (3 in a full run, \`--storm-repeat\`), so the table at the top gives medians and ranges of ratios that stray by a third from run to run, mostly with the time of the first open.`,
    '',
  )
  return lines.join('\n')
}
