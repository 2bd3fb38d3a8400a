import {
  BOMBS,
  BOMB_BYTES,
  DRAIN_MS,
  ECHO_GRACE_MS,
  ECHO_INTERVAL_MS,
  FLOOD_ECHOERS,
  FLOOD_OUTSTANDING,
  FLOOD_ROUNDS,
  FLOOD_WARMUP_MS,
  FLOOD_WINDOW_MS,
  STALL_BATCH,
  STALL_MS,
  STALL_PAD_BYTES,
  STALL_READERS,
  RATE_LIMIT,
  rankQuantile,
  type AbuseResults,
  type FloodResult,
  type Rss,
  type StallClient,
  type StallResult,
} from './abuse.ts'
import type { ServerKey } from './servers.ts'
import type { Spread } from './stats.ts'

/**
 * The stalled reader on durable-websocket before it had flow control
 * (issue 12, point 1): the durable-websocket row of bench/RESULTS-abuse.md as
 * first written, by `npm run bench -- --abuse` on the 2-CPU bench VM, under
 * a load average of about 4 from other work. It was a plain client: at that
 * commit the package had no sessions, and nothing bounded what any client
 * was sent, so it is the before of the session row too.
 */
const BEFORE_FLOW_CONTROL = {
  date: '2026-11-29',
  commit: 'c87835c',
  copies: 99_400,
  copyBytes: 2_070,
  runtimeGrowthMiB: 329,
  proxyGrowthMiB: 0,
  ending: 'never closed: once it read again it got all 99,400 copies in 2.4 s, nothing dropped',
}

const LABELS: Partial<Record<ServerKey, string>> = {
  raw: 'raw Hibernation API (the floor)',
  package: 'durable-websocket',
}

const CLIENTS: Record<StallClient, string> = {
  plain: 'plain WebSocket',
  session: 'session client (`dws.session.v1`)',
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

function label(key: ServerKey): string {
  return LABELS[key] ?? key
}

function mib(bytes: number): string {
  return (bytes / 1_048_576).toFixed(0)
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '–'
}

/** `120 → 540 MiB (+420)`, then what was left once the abusive client had gone. */
function rssCells(rss: Rss): [string, string] {
  return [
    `${mib(rss.beforeBytes)} → ${mib(rss.peakBytes)} MiB (**+${mib(rss.peakBytes - rss.beforeBytes)}**)`,
    `${mib(rss.afterBytes)} MiB`,
  ]
}

function table(head: string[], align: ('l' | 'r')[], rows: string[][]): string {
  const rule = align.map((a) => (a === 'r' ? '---:' : '---'))
  return [head, rule, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n')
}

function runtimeGrowth(result: { memory: { runtime: Rss } } | undefined): number | undefined {
  const memory = result?.memory.runtime
  return memory === undefined ? undefined : memory.peakBytes - memory.beforeBytes
}

function ratio(after: number | undefined, before: number | undefined): string {
  if (after === undefined || before === undefined || before <= 0) return '–'
  return fixed(after / before, 2)
}

function bombRatio(results: AbuseResults): string {
  const growth = (key: ServerKey): number | undefined =>
    runtimeGrowth(results.bomb.find((r) => r.server === key))
  return ratio(growth('package'), growth('raw'))
}

function stallOf(results: AbuseResults, server: ServerKey, client: StallClient): StallResult | undefined {
  return results.stall.find((r) => r.server === server && r.client === client)
}

/** The stalled reader's ending, with when the server said it held and closed a session client. */
function stallEnding(r: StallResult): string {
  const said: string[] = []
  const { heldAtMs, closedAtMs } = r.serverSaid
  if (heldAtMs !== undefined) said.push(`held its live sends ${fixed(heldAtMs / 1000, 1)} s into the load`)
  if (closedAtMs !== undefined) said.push(`closed it with 3903 ${fixed(closedAtMs / 1000, 1)} s into it`)
  if (said.length === 0) return r.ending
  return `${r.ending} (the server's log: it ${said.join(' and ')}; a paused reader sees the close only once it reads again)`
}

function stallSection(results: AbuseResults): string[] {
  const rows = results.stall.map((r) => [
    label(r.server),
    CLIENTS[r.client],
    `${integer.format(r.copies)} × ${integer.format(r.copyBytes)} B = ${mib(r.copies * r.copyBytes)} MiB in ${fixed(r.loadMs / 1000, 1)} s${r.capped ? ' (stopped at the RSS cap)' : ''}`,
    ...rssCells(r.memory.runtime),
    `+${mib(r.memory.proxy.peakBytes - r.memory.proxy.beforeBytes)} MiB`,
    stallEnding(r),
  ])
  const floor = runtimeGrowth(stallOf(results, 'raw', 'plain'))
  const overFloor = (['plain', 'session'] as const)
    .map((client) => `${CLIENTS[client]} ${ratio(runtimeGrowth(stallOf(results, 'package', client)), floor)}`)
    .join(', ')
  return [
    '## A reader that stalls under broadcast',
    '',
    `A raw TCP client opens a WebSocket and stops reading (its socket paused), in a room where ${String(STALL_READERS)} other clients read normally; one of them sends \`{ "broadcast": ${String(STALL_BATCH)}, "pad": ${String(STALL_PAD_BYTES)} }\` and sends the next once its own ${String(STALL_BATCH)} copies are in, for ${String(STALL_MS / 1000)} s. A plain WebSocket stops the moment the 101 is in. A session client offers \`dws.session.v1\`, reads its welcome, then stops, sending no ack: past its send window (\`sendWindow\`, by default 500 frames or 1 MiB unacknowledged) the object stops sending it live copies, and once the session log (\`resume.maxMessages\`, by default 5,000) no longer holds what it was not sent, closes it with 3903. RSS of the runtime workerd (which runs the object) and of wrangler's proxy workerd are sampled every 20 ms from just before the load to 1 s after it; *left* is read once the stalled client is gone. Then the stalled client reads again for up to ${String(DRAIN_MS / 1000)} s (a session client acking every 32 frames, as durable-websocket/client does), to see how its connection ends and what it got.`,
    '',
    table(
      [
        'server',
        'stalled client',
        'copies to each socket',
        'runtime RSS before → peak',
        'left',
        'proxy RSS',
        'the stalled reader',
      ],
      ['l', 'l', 'r', 'r', 'r', 'r', 'l'],
      rows,
    ),
    '',
    `Runtime growth, durable-websocket over the floor (a plain client on the floor): ${overFloor}.`,
    '',
    ...beforeAfter(results),
  ]
}

/**
 * durable-websocket's stalled reader before flow control (the recorded
 * figure) and after (this run), one row per kind of client.
 */
function beforeAfter(results: AbuseResults): string[] {
  const before = BEFORE_FLOW_CONTROL
  const beforeGrowth = before.runtimeGrowthMiB * 1_048_576
  const beforeLoad = `${integer.format(before.copies)} × ${integer.format(before.copyBytes)} B`
  const rows = (['plain', 'session'] as const).map((client) => {
    const after = stallOf(results, 'package', client)
    return [
      CLIENTS[client],
      `**+${String(before.runtimeGrowthMiB)} MiB** for ${beforeLoad}${client === 'session' ? ' (the plain figure: no flow control then)' : ''}`,
      after === undefined
        ? 'not measured'
        : `**+${mib(runtimeGrowth(after) ?? 0)} MiB** for ${integer.format(after.copies)} × ${integer.format(after.copyBytes)} B`,
      ratio(runtimeGrowth(after), beforeGrowth),
      before.ending,
      after === undefined ? '–' : stallEnding(after),
    ]
  })
  return [
    '### durable-websocket before and after flow control',
    '',
    `*Before* is the figure recorded on ${before.date} at ${before.commit} in this same scenario, with a plain client (the runtime grew by +${String(before.runtimeGrowthMiB)} MiB, the proxy by +${String(before.proxyGrowthMiB)} MiB); the package then had no sessions and nothing bounded what any client was sent, so it stands for a session client too. *After* is this run. Flow control is for session clients only: nothing on the server can tell how far behind a plain one is (workerd has no \`bufferedAmount\`; docs/api.md, \`sendWindow\`), so its *after* is what a plain client still costs, and the floor's row above is what no flow control costs in this same run.`,
    '',
    table(
      [
        'stalled client',
        'before: runtime RSS growth',
        'after: runtime RSS growth',
        'after / before',
        'before: the stalled reader',
        'after: the stalled reader',
      ],
      ['l', 'r', 'r', 'r', 'l', 'l'],
      rows,
    ),
    '',
  ]
}

function bombSection(results: AbuseResults): string[] {
  const rows = results.bomb.map((r) => [
    r.server === 'raw'
      ? `${label(r.server)}: its 101 says nothing of compression (before)`
      : `${label(r.server)}: its 101 says \`no-compression\` (after)`,
    r.extensions.map((e) => `\`${e}\``).join(', '),
    Object.entries(r.endings)
      .map(([ending, count]) => `${String(count)} ${ending}`)
      .join('; '),
    ...rssCells(r.memory.runtime),
    `+${mib(r.memory.proxy.peakBytes - r.memory.proxy.beforeBytes)} MiB`,
  ])
  return [
    '## A permessage-deflate bomb',
    '',
    `${String(BOMBS)} raw clients at once offer \`permessage-deflate\`, and each sends one binary frame with RSV1 set whether or not the server agreed: ${integer.format(BOMB_BYTES / 1_048_576)} MiB of one letter, deflated to about 31 KB. Where compression was agreed the runtime inflates it before any size check; where it was refused, RSV1 is a protocol error and nothing is inflated. RSS is sampled every 20 ms from before the handshakes to 3 s after the frames; *left* is read once the clients are gone.`,
    '',
    table(
      ['server', '101 extensions', 'the connections', 'runtime RSS before → peak', 'left', 'proxy RSS'],
      ['l', 'l', 'l', 'r', 'r', 'r'],
      rows,
    ),
    '',
    `Runtime growth, after over before: ${bombRatio(results)}.`,
    '',
  ]
}

interface FloodSummary {
  quietP50: number
  quietP99: number
  floodedP50: number
  floodedP99: number
  p50Ratio: Spread
  p99Ratio: Spread
  flooderPerSecond: number
  /** Echo messages from the windows with no reply within the grace, and all echo messages from them. */
  unanswered: number
  sent: number
  endings: string
  echoersClosed: number
}

/** A spread by nearest rank, which an Infinity (a reply that never came) does not turn into NaN. */
function rankSpread(values: readonly number[]): Spread {
  return {
    median: rankQuantile(values, 0.5),
    q1: rankQuantile(values, 0.25),
    q3: rankQuantile(values, 0.75),
    count: values.length,
  }
}

function summarizeFlood(result: FloodResult): FloodSummary {
  const each = (f: (round: FloodResult['rounds'][number]) => number): number =>
    rankQuantile(result.rounds.map(f), 0.5)
  const quantile = rankQuantile
  const endings = [...new Set(result.rounds.map((r) => r.flooderEnding ?? 'never closed'))].join('; ')
  return {
    quietP50: each((r) => quantile(r.quiet, 0.5)),
    quietP99: each((r) => quantile(r.quiet, 0.99)),
    floodedP50: each((r) => quantile(r.flooded, 0.5)),
    floodedP99: each((r) => quantile(r.flooded, 0.99)),
    p50Ratio: rankSpread(result.rounds.map((r) => quantile(r.flooded, 0.5) / quantile(r.quiet, 0.5))),
    p99Ratio: rankSpread(result.rounds.map((r) => quantile(r.flooded, 0.99) / quantile(r.quiet, 0.99))),
    flooderPerSecond: each((r) => (r.flooderAnswered * 1000) / FLOOD_WINDOW_MS),
    unanswered: result.rounds.reduce((sum, r) => sum + r.flooded.filter((ms) => ms === Infinity).length, 0),
    sent: result.rounds.reduce((sum, r) => sum + r.flooded.length, 0),
    endings,
    echoersClosed: result.rounds.reduce((sum, r) => sum + r.echoersClosed, 0),
  }
}

/** Milliseconds, or a bound for a reply that did not come within the grace. */
function ms(value: number): string {
  return value === Infinity ? `> ${integer.format(ECHO_GRACE_MS)}` : fixed(value, 2)
}

function ratioCell(ratios: Spread): string {
  const cell = (value: number): string => (value === Infinity ? '∞' : fixed(value, 1))
  if (ratios.count === 0) return '–'
  if (ratios.count < 3) return cell(ratios.median)
  return `${cell(ratios.median)} (${cell(ratios.q1)}–${cell(ratios.q3)})`
}

function floodSection(results: AbuseResults): string[] {
  const rows = results.flood.map((r) => {
    if (!r.available) {
      return [
        'durable-websocket',
        `${r.label}: **not available** (the server's /health did not name it as applied)`,
        ...Array.from({ length: 8 }, () => '–'),
      ]
    }
    const s = summarizeFlood(r)
    return [
      'durable-websocket',
      r.label,
      ms(s.quietP50),
      ms(s.quietP99),
      ms(s.floodedP50),
      ms(s.floodedP99),
      ratioCell(s.p50Ratio),
      ratioCell(s.p99Ratio),
      integer.format(s.flooderPerSecond),
      `${s.endings}; ${integer.format(s.unanswered)} of ${integer.format(s.sent)} echo messages unanswered after ${String(ECHO_GRACE_MS / 1000)} s${s.echoersClosed > 0 ? `; **${String(s.echoersClosed)} echo client(s) closed**` : ''}`,
    ]
  })
  return [
    '## One client flooding a room',
    '',
    `${String(FLOOD_ECHOERS)} echo clients each send a small JSON message every ${String(ECHO_INTERVAL_MS)} ms and time its reply (send to reply; a message may be sent before the last reply is in). In each of ${String(FLOOD_ROUNDS)} rounds they are measured twice, in rooms (new objects) of their own: alone, and beside a sixth client that sends the same message as fast as it can, reading every reply, with at most ${integer.format(FLOOD_OUTSTANDING)} unanswered; the two halves swap order from round to round. Each half runs ${String(FLOOD_WARMUP_MS)} ms before the ${String(FLOOD_WINDOW_MS / 1000)} s that are measured; a message sent in those seconds may then wait up to ${String(ECHO_GRACE_MS / 1000)} s more for its reply, the flood still going, and one still unanswered counts as slower than that (\`> ${integer.format(ECHO_GRACE_MS)}\`; quantiles are nearest-rank). \`× alone\` is the median over the rounds of the flooded half's p50 (p99) over the quiet half's from the same round, with their range; the other figures are medians over the rounds. The rate limit is asked of the package server through the wrangler var \`BENCH_RATE_LIMIT\`, which it passes to the \`rateLimit\` option (\`{ messages: ${String(RATE_LIMIT.messages)}, per: ${String(RATE_LIMIT.perSeconds * 1000)} }\`: a flooder with no token left is closed with 1008); its row is filled only when the server's /health names the limit it applied.`,
    '',
    table(
      [
        'server',
        'rate limit',
        'p50 alone ms',
        'p99 alone ms',
        'p50 flooded ms',
        'p99 flooded ms',
        'p50 × alone',
        'p99 × alone',
        'flooder answered/s',
        'the flooder',
      ],
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
      rows,
    ),
    '',
  ]
}

/** The abuse section: a document of its own (`standalone`), or a part of RESULTS.md. */
export function renderAbuse(results: AbuseResults, standalone: boolean): string {
  const lines: string[] = []
  const heading = standalone ? '#' : '##'
  lines.push(`${heading} Under abuse`, '')
  lines.push(
    `What a stalled reader, a compression bomb and a flooding client cost, measured by \`npm run bench${standalone ? ' -- --abuse' : ''}\` on ${results.date.slice(0, 10)} at commit ${results.commit}${results.srcDirty ? ' (with uncommitted changes in src/)' : ''}, under \`wrangler dev\`${results.direct ? " on the runtime workerd's own port (`--direct`)" : " through wrangler's proxy"}, every measurement on a \`wrangler dev\` of its own, started just before it and stopped after (issue 12). Figures, not assertions. Load average before ${results.loadBefore.map((n) => n.toFixed(2)).join(' / ')}, after ${results.loadAfter.map((n) => n.toFixed(2)).join(' / ')}; ${fixed(results.durationMs / 60_000, 1)} min in all.`,
    '',
  )
  // Inside RESULTS.md this whole section sits one level down.
  const sub = (section: string[]): string[] =>
    standalone ? section : section.map((line) => (line.startsWith('## ') ? `#${line}` : line))
  lines.push(...sub(stallSection(results)), ...sub(bombSection(results)), ...sub(floodSection(results)))
  return lines.join('\n')
}
