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
import { CONTENDERS, MISSED, type ResumeSample, type SessionKey, type SessionResults } from './sessions.ts'
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
        key === 'sessions' || key === 'package' ? against(off, key === 'package', cpuPerOp) : '',
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
    ],
    ['l', 'r', 'r', 'r', 'r', 'r'],
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
    ],
  )
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

Found on 2026-11-29 on a shared machine (load average 8 to 15 on 2 cores, so read shares and ratios, not rates), in three ways: the tables above; \`npm run bench:profile -- --server package --client session --save p.cpuprofile\` (10 session clients in a closed-loop echo, 3 s, twice with the same shares; the callers of native frames read from the saved profile); and a throwaway echo object (not committed) that wrote, per message, nothing, one \`kv.put\`, one UPDATE, one INSERT into a table with \`AUTOINCREMENT\` and \`RETURNING\`, one INSERT without either, or an UPDATE and an INSERT, each in 3 interleaved rounds of echo with 10 connections.

- **The storage writes, not the protocol.** In the profile, 36 % of the isolate's samples are inside SqlStorage \`exec\` and 4 % in \`one\` (reading \`RETURNING seq\`): 22 % under \`SessionStore.saveHandled\` (the \`UPDATE dws_sessions SET handled\` of every client message) and 14 % under \`SessionStore.append\` (the \`INSERT INTO dws_log\` of every send to a session). The protocol's own JS (\`splitNumbered\`, \`numbered\`, \`#onSessionFrame\`, \`#log\`, \`#sendToSession\`, the acks) is about 7 %, the size of the plain path's own work.
- **Per transaction, not per statement.** The throwaway object's echo cost 60–90 µs of worker CPU per message writing nothing, and 280–550 µs writing anything: a bare \`kv.put\`, one UPDATE, one INSERT with or without \`AUTOINCREMENT\`, or two statements, all within the noise of each other. The resume section agrees: its 1,000 broadcasts run in one event, one implicit transaction with 1,000 INSERTs, at about 20 µs of worker CPU each, the send included. Under \`wrangler dev\` every event that wrote commits on its own, and that commit is the price; the output gate also holds the reply until it is done, so a session echo is slower too (p50 1.5 to 5 ms in these runs, against about 0.1 ms, with one connection). Whether Cloudflare's own storage prices a commit the same way is not measured here.
- **So the echo target cannot be met by making statements cheaper.** Any echo that makes its message durable commits once per message; the *durable floor* rows measure exactly that, and *sessions on ÷ durable floor* is what the package adds on top of it (the \`handled\` UPDATE in the same transaction, the protocol's JS, the acks).
- **Broadcast**: one INSERT per broadcast (not per recipient) and the trigger's own \`handled\` UPDATE, one transaction shared by 100 deliveries. Profiled the same way with \`--broadcast --connections 100\`, the storage calls are about 9 % of the samples and the sends themselves 55 %. The clients' acks (one per 32 copies per socket, about 3 events per broadcast of 100) write nothing and cost little. Over three runs, sessions on came to 1.12–1.46× the floor per delivery and the durable floor to 1.13–1.17×: most of the miss is the commit here too.

What would cut it, for src/object/sessions.ts and src/object/manager.ts (each is one \`npm run bench -- --quick --sessions\` to check):

1. **Fewer transactions, not fewer statements.** An event that writes nothing costs no commit. A client message commits today for its \`handled\` even when the handler sends nothing. \`handled\` could be kept in the socket's attachment (no commit, and it survives hibernation) and written to SQLite only with the server's ack (every 32 messages), when the session is suspended, and in any event that writes anyway (a send to a session, a broadcast, the handler's own storage writes: the same implicit transaction, so no extra commit). A drop or an eviction then loses nothing; after a crash of the object, up to 31 messages that wrote nothing could reach \`message\` again. That changes docs/guarantees.md and what the chaos test (two SIGKILLs) may accept, so it is the lead's call, perhaps as an option. An echo would keep its one commit (its reply is logged), so this helps handlers that do not send, not the echo.
2. **Batch sends within an event.** Already so: the sends and broadcasts of one handler call with no \`await\` between them share one implicit transaction, so one commit. A handler that awaits I/O between sends may pay a commit for each part; docs/api.md could say so.
3. **Not worth it, measured**: dropping \`AUTOINCREMENT\` and \`RETURNING\` from \`dws_log\` (the profile gives \`one\` 4 %, the throwaway object shows no difference in CPU per message). By the same measurement (a bare \`kv.put\` cost as much as either statement), neither would a narrower table for \`handled\` nor prepared statements, which SqlStorage already keeps, cached by the statement's text. **Not worth it, by size**: the client's acks (\`isAck\` parses JSON; a few events per hundred deliveries) and the replay (10–15 µs of worker CPU per replayed message, one SELECT).
4. **On the target itself**: with every message durable, the echo target (≤ 1.3× a floor that writes nothing) is out of reach for any design under \`wrangler dev\`; a target against the durable floor (for example ≤ 1.1×) would measure what the package controls.
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
    `${String(results.rounds)} interleaved rounds, each on new rooms (new objects), the order rotating from round to round; \`× floor\` and \`× sessions off\` are medians of per-round paired ratios with their interquartile range, as in the main tables. *Sessions on* and *sessions off* are the same \`wrangler dev\` of the package server (its default options: \`resume\` on, window 120 s, 5,000 messages): only the client differs. The *durable floor* is the floor's own object writing one SQLite row for every message it sends (one per echo reply, one per broadcast, as the package's log does), under a \`wrangler dev\` of its own (\`BENCH_DURABLE=on\`): what any design that makes each message durable pays at the least. The session client (bench/lib/sessionSocket.ts) offers \`dws.session.v1\`, waits for the welcome, numbers what it sends, strips the number from what it receives, and acknowledges every 32 data frames as durable-websocket/client does; its acks are extra messages the object handles, counted in its CPU but not as operations.`,
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
    `Sessions off: worker CPU per operation ≤ ${String(TARGET_OFF)}× the floor. Sessions on: per echo ≤ ${String(TARGET_ON_ECHO)}×, per broadcast delivery to 100 sockets ≤ ${String(TARGET_ON_BROADCAST)}×. ✓ or ✗ compares the median paired ratio with the target; the interquartile range says how far a single round strays. The last two columns split a miss: what one write per message costs by itself (durable floor ÷ floor), and what the package adds beyond it (sessions on ÷ durable floor).`,
    '',
  )
  lines.push(
    `${h}# A resume that replays ${integer.format(MISSED)} missed messages`,
    '',
    resumeTable(results.resume),
    '',
  )
  lines.push(
    `${String(results.resume.length)} rounds, each in a new room. A plain client and a session client connect; the session client's TCP connection is cut without a close frame (the object sees 1006 and suspends the session), and ${integer.format(MISSED)} broadcasts follow (one \`{ "broadcast": ${String(MISSED)} }\` from the plain client; each is logged once in SQLite). The session client then reconnects offering \`dws.resume.<last>.<token>\`; the span runs from its handshake request to the ${integer.format(MISSED)}th replayed frame, each checked in order. Worker CPU is the runtime workerd's over that span (the Worker's routing of the upgrade included). For reference, the broadcasts' own cost when they were sent, and a new session's handshake in the same room right after.`,
    '',
  )
  lines.push(WHERE_THE_TIME_GOES.replaceAll(/^## /gm, `${h}# `))
  return lines.join('\n')
}
