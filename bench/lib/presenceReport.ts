import { OPERATIONS, type OpSample, type Operation, type PresenceResults } from './presence.ts'
import { fixed, integer, pairedCell, perRound, table } from './report.ts'
import { descriptorsFor } from './storm.ts'
import { spread } from './stats.ts'

const LABELS: Record<Operation, string> = {
  broadcast: 'broadcast of one small message (reference)',
  join: 'a member joins (a new session socket)',
  update: 'a member updates its metadata',
  leave: 'a member leaves (its socket closes, 1000)',
}

/** `12.3 (11.0–14.1)`: the median with the interquartile range. */
function cell(values: readonly number[], digits: number): string {
  return pairedCell(spread(values.filter(Number.isFinite)), digits)
}

function opTable(results: PresenceResults): string {
  const base = results.samples.broadcast
  const rows = OPERATIONS.map((op) => {
    const samples: OpSample[] = results.samples[op]
    const against = (f: (s: OpSample) => number): string =>
      op === 'broadcast' ? '1.00' : pairedCell(perRound(samples, base, f))
    return [
      LABELS[op],
      integer.format(samples.length),
      cell(
        samples.map((s) => s.ms),
        1,
      ),
      against((s) => s.ms),
      cell(
        samples.map((s) => s.cpuMs),
        1,
      ),
      against((s) => s.cpuMs),
      cell(
        samples.map((s) => (s.cpuMs * 1000) / results.members),
        1,
      ),
      cell(
        samples.map((s) => s.frames / results.members),
        2,
      ),
      cell(
        samples.map((s) => s.frameBytes),
        0,
      ),
    ]
  })
  return table(
    [
      'operation',
      'rounds',
      'all N have it (ms)',
      '÷ broadcast',
      'worker CPU (ms)',
      '÷ broadcast',
      'worker CPU per watcher (µs)',
      'frames per watcher',
      'frame (bytes)',
    ],
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )
}

/** The section as a document of its own (`--presence`). */
export function renderPresence(results: PresenceResults): string {
  const m = results.machine
  const n = integer.format(results.members)
  const joins = results.samples.join.map((s) => s.welcomeMs).filter((v): v is number => v !== undefined)
  const clocks = new Set(OPERATIONS.flatMap((op) => results.samples[op].map((s) => s.clock)))
  const lines: string[] = []
  lines.push(`# Presence: a join, an update and a leave with ${n} members present`, '')
  lines.push(
    `Measured by \`npm run bench -- ${results.mode === 'quick' ? '--quick ' : ''}--presence${results.customMembers ? ` --presence-members ${String(results.members)}` : ''}\` on ${results.date.slice(0, 10)} at commit ${results.commit}${results.srcDirty ? ' (with uncommitted changes in src/)' : ''}, under \`wrangler dev\` ${results.direct ? "on the runtime's own port" : "through wrangler's proxy"}, with ${n} members${results.customMembers ? ' (a trial at a size other than the default)' : ''}. Figures, not assertions. Load average before ${results.loadBefore.map((v) => v.toFixed(2)).join(' / ')}, after ${results.loadAfter.map((v) => v.toFixed(2)).join(' / ')}; ${(results.durationMs / 60_000).toFixed(1)} min in all.`,
    '',
    `Machine: ${String(m.cpus)} × ${m.cpuModel}, ${fixed(m.memoryBytes / 1_073_741_824, 1)} GiB, ${m.kernel}; Node ${m.node}, wrangler ${m.wrangler}, workerd ${m.workerd}, ws ${m.ws}. Open files: soft limit ${results.fdLimit.soft}, hard ${results.fdLimit.hard} (about ${integer.format(descriptorsFor(results.members))} needed). Objects' storage ${results.state === 'memory' ? 'in memory (`/dev/shm`)' : 'on disk'}. Worker CPU from ${[...clocks].map((c) => (c === 'sched' ? "the scheduler's ns counters" : 'USER_HZ ticks')).join(' and ') || '—'}.`,
    '',
  )
  lines.push(
    `## ${n} members, ${String(results.rounds)} rounds`,
    '',
    `Medians, with the interquartile range of the rounds in brackets; each ÷ broadcast is the median of the rounds' own ratios to the broadcast measured in the same round.`,
    '',
    opTable(results),
    '',
    `Opening the room: ${n} session sockets, each its own member, every one holding the whole list, in ${fixed(results.openMs / 1000, 1)} s; the list as the last one got it was ${integer.format(results.listBytes)} bytes. A joiner's own welcome (and its list) came ${cell(joins, 1)} ms after its dial.`,
    '',
  )
  if (results.problems.length > 0)
    lines.push(`Problems: ${results.problems.map((p) => `\`${p}\``).join('; ')}.`, '')
  lines.push(
    '## Method',
    '',
    `One \`wrangler dev\` of the package's bench server (bench/servers/package) with \`BENCH_PRESENCE=on\`: presence keyed by the upgrade's \`?member=\`, no \`meta\` option (a new member's metadata is \`{}\`), and a message \`{ "presence": { … } }\` that calls \`conn.presence.update(meta)\`; without the var the server is the one every other section measures. ${n} session sockets (bench/lib/sessionSocket.ts, the bench's minimal session client on \`ws\`, permessage-deflate off), \`m0\`…, open in one room ${String(25)} handshakes at a time, each its own member; each keeps the list as its presence frames tell it, and the run waits until all of them hold every member. One more socket, member \`broadcaster\`, sends the broadcast trigger. Then ${String(results.warmupRounds)} unmeasured rounds and ${String(results.rounds)} measured ones, each of four operations ${String(300)} ms apart: *broadcast*: \`{ "broadcast": 1 }\` from the broadcaster, the server's \`manager.broadcast({ seq: 0 })\` to every socket, timed from the send until all ${n} watchers have the copy; *join*: a socket of a new member \`joiner-<round>\` dials, timed from the dial (its handshake, session and welcome included) until all ${n} watchers have the diff whose \`join\` names it; *update*: that socket sends \`{ "presence": { "status": "away", "round": r } }\`, timed from the send until all ${n} have the diff whose \`update\` names it; *leave*: that socket closes with 1000, which ends its session for good, timed from the close until all ${n} have the diff whose \`leave\` names it. Each diff also goes to the broadcaster (and an update to the joiner), as the broadcast's copy goes to the broadcaster: ${n} + 1 or 2 sockets either way. *Worker CPU* is the runtime workerd's over the same span (wrangler's proxy, which relays every frame, is not in it), and *per watcher* divides it by ${n}. *Frames per watcher* counts the presence frames (data frames, for the broadcast) the ${n} watchers received over the span, over ${n}: 1.00 means one frame per change, nothing batched in or repeated. *Frame* is the text of the frame that named the member (of the broadcast's copy, its payload). All ${n} watchers run in this one Node process, so the time is also theirs to read ${n} frames; the broadcast pays the same. Every wait is bounded (30 s per operation, 300 s to open the room); a run that failed says so above the method.`,
    '',
  )
  return lines.join('\n')
}
