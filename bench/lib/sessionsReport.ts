import type { Sample } from './measure.ts'
import {
  backgroundLoad,
  cpuPerOp,
  fixed,
  integer,
  mark,
  p99Of,
  pairedCell,
  perRound,
  summarize,
  table,
  throughputOf,
} from './report.ts'
import type { ScenarioResult } from './results.ts'
import {
  CONTENDERS,
  MISSED,
  RECONNECTS,
  SUSPEND_SETTLE_MS,
  type ResumeSample,
  type SessionKey,
  type SessionResults,
} from './sessions.ts'
import { median, spread } from './stats.ts'

/** Issue 11's targets, per operation against the floor. Reported, never asserted. */
const TARGET_OFF = 1.03
const TARGET_ON_ECHO = 1.3
const TARGET_ON_BROADCAST = 1.1

function targetOn(result: ScenarioResult<SessionKey>): number {
  return result.scenario.id.startsWith('broadcast') ? TARGET_ON_BROADCAST : TARGET_ON_ECHO
}

function label(key: SessionKey): string {
  return CONTENDERS.find((c) => c.key === key)?.label ?? key
}

function perOpTable(results: SessionResults): string {
  const rows: string[][] = []
  for (const result of results.scenarios) {
    const floor = result.samples.raw
    const off = result.samples.package
    let first = true
    for (const { key } of CONTENDERS) {
      const samples = result.samples[key]
      if (samples === undefined || samples.length === 0) continue
      const s = summarize(samples)
      const against = (base: Sample[] | undefined, same: boolean, f: (x: Sample) => number): string =>
        base === undefined ? '' : same ? '1.00' : pairedCell(perRound(samples, base, f))
      rows.push([
        first ? `**${result.scenario.title}**` : '',
        label(key),
        pairedCell(spread(samples.map(cpuPerOp).filter(Number.isFinite)), 1),
        against(floor, key === 'raw', cpuPerOp),
        key === 'sessions' || key === 'package'
          ? against(off, key === 'package', cpuPerOp)
          : key === 'requests'
            ? `${against(result.samples.sessions, false, cpuPerOp)} × sessions on`
            : '',
        integer.format(s.throughput),
        against(floor, key === 'raw', throughputOf),
        fixed(s.p50, 2),
        fixed(s.p99, 2),
        against(floor, key === 'raw', p99Of),
        `${fixed(s.workerBusy, 0)} / ${fixed(s.proxyBusy, 0)} / ${fixed(s.clientBusy, 0)}`,
      ])
      first = false
    }
  }
  return table(
    [
      'scenario',
      'server and client',
      'worker CPU µs/op (IQR)',
      '× floor, paired (IQR)',
      '× sessions off, paired (IQR)',
      'op/s',
      '× floor, paired (IQR)',
      'p50 ms',
      'p99 ms',
      '× floor, paired (IQR)',
      'CPU % worker / proxy / client',
    ],
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )
}

function targetsTable(results: SessionResults): string {
  const rows: string[][] = []
  for (const result of results.scenarios) {
    const floor = result.samples.raw
    const off = result.samples.package
    const on = result.samples.sessions
    const durable = result.samples.durable
    const onDisk = result.samples.durableDisk
    if (floor === undefined || off === undefined || on === undefined) continue
    const offRatio = perRound(off, floor, cpuPerOp)
    const onRatio = perRound(on, floor, cpuPerOp)
    const target = targetOn(result)
    rows.push([
      result.scenario.title,
      `${pairedCell(offRatio)} ${mark(offRatio.median <= TARGET_OFF)}`,
      `${pairedCell(onRatio)} ${mark(onRatio.median <= target)} (≤ ${String(target)})`,
      pairedCell(perRound(on, off, cpuPerOp)),
      durable === undefined ? '' : pairedCell(perRound(durable, floor, cpuPerOp)),
      durable === undefined ? '' : pairedCell(perRound(on, durable, cpuPerOp)),
      ...(results.state === 'memory'
        ? [onDisk === undefined ? '' : pairedCell(perRound(onDisk, floor, cpuPerOp))]
        : []),
    ])
  }
  return table(
    [
      'scenario',
      `sessions off: worker CPU/op ≤ ${String(TARGET_OFF)}× floor`,
      'sessions on: worker CPU/op × floor (target)',
      'sessions on ÷ off',
      'durable floor ÷ floor',
      'sessions on ÷ durable floor',
      ...(results.state === 'memory' ? ['durable floor on disk ÷ floor'] : []),
    ],
    ['l', 'r', 'r', 'r', 'r', 'r', ...(results.state === 'memory' ? (['r'] as const) : [])],
    rows,
  )
}

function resumeTable(samples: readonly ResumeSample[]): string {
  const cell = (f: (s: ResumeSample) => number, digits = 1): string => {
    const s = spread(samples.map(f))
    return samples.length < 3
      ? fixed(s.median, digits)
      : `${fixed(s.median, digits)} (${fixed(s.q1, digits)}–${fixed(s.q3, digits)})`
  }
  return table(
    ['what', 'wall ms (IQR)', 'worker CPU ms (IQR)', 'worker CPU per message, µs'],
    ['l', 'r', 'r', 'r'],
    [
      [
        `**the resume**: handshake to the ${integer.format(MISSED)}th replayed frame`,
        cell((s) => s.replayMs),
        cell((s) => s.workerCpuMs),
        fixed((1000 * median(samples.map((s) => s.workerCpuMs))) / MISSED, 1),
      ],
      ['… of which handshake to welcome', cell((s) => s.welcomeMs, 2), '', ''],
      [
        `the same to a client that reads batches (\`dws.session.batches\`, as durable-websocket/client offers), after ${integer.format(MISSED)} more`,
        cell((s) => s.batchedReplayMs),
        cell((s) => s.batchedWorkerCpuMs),
        fixed((1000 * median(samples.map((s) => s.batchedWorkerCpuMs))) / MISSED, 1),
      ],
      [
        `the same ${integer.format(MISSED)} broadcasts when they were sent (logged; one other socket attached)`,
        cell((s) => s.liveMs),
        cell((s) => s.liveWorkerCpuMs),
        fixed((1000 * median(samples.map((s) => s.liveWorkerCpuMs))) / MISSED, 1),
      ],
      [
        'a new session in the same room: handshake to welcome',
        cell((s) => s.newSessionMs, 2),
        cell((s) => s.newSessionWorkerCpuMs, 2),
        '',
      ],
      [
        `a resume that missed nothing, and its cut: per cycle of ${String(RECONNECTS)} in a row`,
        cell((s) => s.emptyResumeMs, 2),
        cell((s) => s.emptyResumeWorkerCpuMs, 2),
        '',
      ],
      [
        `a plain connect in the same room, and its cut: per cycle of ${String(RECONNECTS)} in a row`,
        cell((s) => s.plainConnectMs, 2),
        cell((s) => s.plainConnectWorkerCpuMs, 2),
        '',
      ],
    ],
  )
}

/** Issue 18's target: a resume that missed nothing costs at most this many times a plain connect (worker CPU). */
const TARGET_EMPTY_RESUME = 1.3

function emptyResumeLine(samples: readonly ResumeSample[]): string {
  const ratios = samples
    .map((s) => s.emptyResumeWorkerCpuMs / s.plainConnectWorkerCpuMs)
    .filter(Number.isFinite)
  if (ratios.length === 0) return ''
  const r = spread(ratios)
  return `A resume that missed nothing ÷ a plain connect, worker CPU, per-round paired: ${fixed(r.median, 2)} (${fixed(r.q1, 2)}–${fixed(r.q3, 2)}) ${mark(r.median <= TARGET_EMPTY_RESUME)} (target ≤ ${String(TARGET_EMPTY_RESUME)}).`
}

function emptySpans(results: SessionResults): number {
  let empty = 0
  for (const result of results.scenarios)
    for (const samples of Object.values(result.samples)) empty += samples.filter((s) => s.ops === 0).length
  return empty
}

/**
 * Where a profile of the package server put the time that sessions add, and
 * what would cut it: written from `npm run bench:profile -- --client session`
 * runs, so it changes only when someone profiles again.
 */
export const WHERE_THE_TIME_GOES = `## Where the time goes

Found on 2026-11-29 in four ways: the tables above; \`npm run bench:profile -- --server package --client session\` (10 session clients in a closed-loop echo, 3 s, self time by function); \`strace -c -f\` on the runtime workerd during a closed-loop echo with 10 connections, to count system calls per message; and throwaway variants of the package (not committed), each measured in alternating runs against the unchanged package.

- **A commit per event that writes, and on a disk an fsync per commit.** Under \`wrangler dev\` every event that writes storage commits on its own (workerd gathers the writes of one turn into an implicit transaction and commits it on the next), and workerd keeps local storage in WAL mode with SQLite's default sync: \`strace\` counts one \`fsync\` per echo, for the durable floor and the package alike. On this machine's disk the kernel's share of that fsync, which the runtime's CPU counts, is most of the cost: the *durable floor on disk* row against the *durable floor* row, the same object with its files in \`/dev/shm\`. That share measures the machine's disk, not the server, so every other row keeps its storage in memory (\`--state memory\`, the default where \`/dev/shm\` exists). Cloudflare's own storage does not put a local fsync on the object's thread the same way (it streams the WAL to other machines), but that is not measured here.
- **The commit itself stays.** With storage in memory, the durable floor (one INSERT per message, nothing else) still costs 1.3 to 1.6× the floor per echo: the output gate holds each reply until its commit is done, and each commit runs SQLite's WAL write, its locks, and workerd's own commit path. Any design that makes each message durable before the client can see it pays that once per event; only a later commit (an opt-in that gives up the crash guarantee) would not. The echo target (≤ 1.3× a floor that writes nothing) is below it, so no session echo can meet it under \`wrangler dev\`; *sessions on ÷ durable floor* is the part the package controls.
- **What the package adds, and what was cut.** An echo with sessions writes the client message's \`handled\` count (an UPDATE) and the reply's log row (an INSERT) in the one transaction. The log's numbers were \`AUTOINCREMENT\` with \`RETURNING\`: each commit also rewrote the \`sqlite_sequence\` page, and each append read a row back. The store now numbers the log itself (the newest row is never trimmed, so a rebuilt object reads its head with \`max(seq)\`). Taking the UPDATE out altogether (a throwaway variant, since \`handled\` must stay in the transaction) changed nothing measurable: 124–146 µs per echo with it, 135–148 µs without, in three alternating pairs. The rest is the protocol's JS and the acks, a few percent in the profile.
- **Acks were most of the broadcast's extra.** Every ack a client sends is an event for the object, and an event costs about what an echo does. With the client acking every 32 data frames, a broadcast to 100 session sockets brought about 3 ack events with it. The welcome now tells the client how often to ack: a quarter of the server's send window (\`ackEvery\` 125 frames, \`ackBytes\` 256 KiB by default), which is still long before the window fills, so under 1 ack event per broadcast of 100. In the quick runs that made the change, sessions on went from 1.16 to 0.96–1.17× the floor per broadcast delivery. The byte limit also fixes a pause: with frames over 32 KiB, 32 of them overran the 1 MiB window, and live sends stopped until the client's quiet-second ack.

- **Profiled again on 2026-12-04 against the durable floor itself** (\`npm run bench:profile -- --server raw --durable\` beside \`--server package --client session\`, 10 connections, 4 s each). Time on the object's thread per echo, idle left out: 74 µs for the durable floor (39,078 echoes), 105 µs for a session echo (29,891). Of the session echo's samples, SQLite statements are 29 %: the reply's log INSERT 25 % (about 33 µs an echo, as the floor's one INSERT costs; the first write of an event carries its transaction's cost) and the \`handled\` UPDATE 4 %, 9 % with the code that calls it (about 12 µs). Sending the numbered frame is 10 %, the rest the protocol's JS and garbage collection. The profile overstates the UPDATE: a throwaway variant without it (three alternating pairs of 4 s runs) spent 108 µs of the thread per echo against 110 µs with it, 2–3 %, as on 2026-11-29. What a session echo costs beyond the durable floor is spread over the protocol's work, with no one cut that brings it under 1.15×.

- **\`handled\` rides on the row the handler sent (2026-12-04).** Measured again with alternating bundles of the package against the durable floor on the runtime's own port (10 rounds of 2 s each, 10 connections in a closed-loop echo), the \`handled\` UPDATE cost more than the profile said: without it an echo took 0.87–0.93 of the runtime's CPU with it in four runs, 0.95 with 1 connection. A \`SELECT\` in its place cost as much as the UPDATE, and an UPDATE of the log's own newest row about half: most of the price is the statement call itself, the rest the session row's page in the commit. So the log rows a plain-function handler sends while it runs carry its message's handled stamp (src/object/session/handledStamps.ts, docs/guarantees.md), and the session's own row is written only for a handler that sent nothing, or an \`async\` one. Built, that measured 0.93× the package before it per echo, as much as dropping the UPDATE altogether. What is left beyond the durable floor is the protocol's JS: a throwaway variant with no UPDATE, an INSERT of only the number and the frame, and no in-memory tail still measured 1.20–1.26× the durable floor with 10 connections.

- **A replay paid the runtime once per frame.** On 2026-12-04, 1,000 sockets on the floor's object (bench/servers/raw) were sent the same 15 KB per trigger two ways, ten triggers each, three times: as 15 messages of 1 KB the runtime workerd spent 3.6–3.7 s of CPU, as one message of 15 KB 0.7–0.9 s. A WebSocket send costs the runtime mostly per message (about 24 µs for 1 KB here), not per byte. Live sends cannot be gathered (each is one event's output to one socket), but a replay sends many frames to one socket at once: a client that offers \`dws.session.batches\` (durable-websocket/client does) gets a catch-up's text frames in JSON arrays of up to 64 KiB (docs/protocol.md §2). The resume table above measures both: worker CPU for a replay of 1,000 messages falls to about a quarter.

Left as they are, for src/object/session/link.ts and src/object/session/log.ts (each is one \`npm run bench -- --quick --sessions\` to check):

1. **A later commit, as an option.** Keeping the log in memory and committing it every second or every N messages would bring an echo near the floor, and lose up to that much after a crash or a deploy: exactly what sessions exist to survive. If ever, as an opt-in with its own guarantees and chaos run.
2. **Sends within an event already share a commit**: what one handler call sends and broadcasts with no \`await\` between them is one transaction. A handler that awaits I/O between sends may pay a commit for each part.
`

/** The section as a document of its own (`--sessions`), or as a part of bench/RESULTS.md. */
export function renderSessions(results: SessionResults, standalone: boolean): string {
  const lines: string[] = []
  const background = backgroundLoad(results)
  const h = standalone ? '#' : '##'
  lines.push(`${h} Durable sessions: what they cost`, '')
  lines.push(
    `Echo and broadcast with sessions on, sessions off and the floor, and a resume that replays ${integer.format(MISSED)} missed messages, measured by \`npm run bench${standalone ? ` -- ${results.mode === 'quick' ? '--quick ' : ''}--sessions` : ''}\` on ${results.date.slice(0, 10)} at commit ${results.commit}${results.srcDirty ? ' (with uncommitted changes in src/)' : ''}, under \`wrangler dev\`${results.direct ? " on the runtime's own port" : " through wrangler's proxy"} (issue 11). Figures, not assertions. ${results.mode === 'quick' ? `**Quick mode**: ${String(results.rounds)} rounds of ${String(results.timing.windowMs / 1000)} s. ` : ''}Load average before ${results.loadBefore.map((n) => n.toFixed(2)).join(' / ')}, after ${results.loadAfter.map((n) => n.toFixed(2)).join(' / ')}; other processes used a median ${fixed(background.median, 0)} % of one core during the measured spans (max ${fixed(background.max, 0)} %); ${(results.durationMs / 60_000).toFixed(1)} min in all.`,
    '',
  )
  lines.push(`${h}# Per operation`, '', perOpTable(results), '')
  lines.push(
    `${String(results.rounds)} interleaved rounds, each on new rooms (new objects), the order rotating from round to round; \`× floor\` and \`× sessions off\` are medians of per-round paired ratios with their interquartile range, as in the main tables. *Sessions on* and *sessions off* are the same \`wrangler dev\` of the package server (its default options: \`resume\` on, window 120 s, 5,000 messages): only the client differs. The *durable floor* is the floor's own object writing one SQLite row for every message it sends (one per echo reply, one per broadcast, as the package's log does), under a \`wrangler dev\` of its own (\`BENCH_DURABLE=on\`): what any design that makes each message durable pays at the least. The session client (bench/lib/sessionSocket.ts) offers \`dws.session.v1\`, waits for the welcome, numbers what it sends, strips the number from what it receives, and acknowledges as often as the welcome asks (every 125 data frames or 256 KiB, a quarter of the default send window), as durable-websocket/client does; its acks are extra messages the object handles, counted in its CPU but not as operations. ${results.state === 'memory' ? "Every `wrangler dev` keeps its objects' SQLite files in memory (`/dev/shm`), but for the *durable floor on disk*, the same object as the durable floor with its files on this machine's disk: under `wrangler dev` each commit ends in an fsync of SQLite's WAL, and that row shows what the disk adds." : "Every `wrangler dev` keeps its objects' SQLite files on disk (`--state disk`): each commit includes an fsync of this machine's disk."}`,
    '',
  )
  const empty = emptySpans(results)
  if (empty > 0)
    lines.push(
      `${String(empty)} measured span(s) completed no operation at all (the machine was that busy); their worker CPU per operation is left out of the medians beside it, and their paired ratios drop out.`,
      '',
    )
  lines.push(`${h}# Targets from issue 11 (reported, not asserted)`, '', targetsTable(results), '')
  lines.push(
    `Sessions off: worker CPU per operation ≤ ${String(TARGET_OFF)}× the floor. Sessions on: per echo ≤ ${String(TARGET_ON_ECHO)}×, per broadcast delivery to 100 sockets ≤ ${String(TARGET_ON_BROADCAST)}×. ✓ or ✗ compares the median paired ratio with the target; the interquartile range says how far a single round strays. The last two columns split a miss: what one write per message costs by itself (durable floor ÷ floor), and what the package adds beyond it (sessions on ÷ durable floor). Request/reply (issue 19): the same echo as a request and its reply, target ≤ 1.1× a session echo, in the per-operation table's “× sessions on” cell.`,
    '',
  )
  lines.push(
    `${h}# A resume that replays ${integer.format(MISSED)} missed messages`,
    '',
    resumeTable(results.resume),
    '',
    emptyResumeLine(results.resume),
    '',
  )
  lines.push(
    `${String(results.resume.length)} rounds, each in a new room. A plain client and a session client connect; the session client's TCP connection is cut without a close frame (the object sees 1006 and suspends the session), and ${integer.format(MISSED)} broadcasts follow (one \`{ "broadcast": ${String(MISSED)} }\` from the plain client; each is logged once in SQLite). The session client then reconnects offering \`dws.resume.<last>.<token>\` and not \`dws.session.batches\`, so the replay comes one frame a message; the span runs from its handshake request to the ${integer.format(MISSED)}th replayed frame, each checked in order. It is cut again, ${integer.format(MISSED)} more broadcasts follow, and it resumes offering batches too: the same replay in messages of up to 64 KiB of frames each. Worker CPU is the runtime workerd's over that span (the Worker's routing of the upgrade included). For reference, the broadcasts' own cost when they were sent, and a new session's handshake in the same room right after. Then the caught-up session is cut and resumes at once, having missed nothing, ${String(RECONNECTS)} times in a row, and a plain client connects and is cut as many times in the same room: issue 18 asks the first to cost at most 1.3× the second. Both are taken over the whole loop and the ${String(SUSPEND_SETTLE_MS)} ms after its last cut, per cycle, so each side's close (a suspend, a plain close) and whatever a connect leaves to a later turn (its commit) are counted alike; one connect alone is a few milliseconds, too short a span to read a process's CPU from.`,
    '',
  )
  lines.push(WHERE_THE_TIME_GOES.replaceAll(/^## /gm, `${h}# `))
  return lines.join('\n')
}
