import { fixed, integer, mark, table } from './report.ts'
import { TARGET_RATIO, descriptorsFor, type Restart, type StormResults, type StormSize } from './storm.ts'

const RESTART_TITLES: Record<Restart, string> = {
  object: "the room's object reset (a deploy)",
  runtime: 'the runtime SIGKILLed and restarted',
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

function sizeTable(run: StormSize): string {
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
      'client CPU % (recovery)',
      'resumed',
      'resets',
      'duplicates',
      'gaps',
    ],
    ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    [
      [
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
        run.clientCpuPercent === undefined ? '—' : fixed(run.clientCpuPercent, 0),
        `${integer.format(run.resumed)} of ${integer.format(run.clients + 1)}`,
        integer.format(run.resets),
        integer.format(run.duplicates),
        integer.format(run.gaps),
      ],
    ],
  )
}

/** The section as a document of its own (`--storm`). */
export function renderStorm(results: StormResults): string {
  const m = results.machine
  const lines: string[] = []
  lines.push('# A deploy storm: how long a busy room takes to come back', '')
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
  for (const run of results.runs) {
    lines.push(
      `## ${integer.format(run.clients)} clients, ${RESTART_TITLES[run.restart]}`,
      '',
      sizeTable(run),
      '',
    )
    lines.push(
      `${integer.format(run.broadcastsSent)} broadcasts of ~1 KB sent, each to every client; ${integer.format(run.clientMessagesSent)} client messages accepted by the clients' queues.`,
      '',
    )
    if (run.problems.length > 0)
      lines.push(`Problems: ${run.problems.map((p) => `\`${p}\``).join('; ')}.`, '')
  }
  lines.push(
    '## Method',
    '',
    "For each size and each way of dropping the room, a `wrangler dev` of the chaos fixture (test/e2e/fixtures/chaos: one room that broadcasts what it is asked to, to everyone, and records every message in its SQLite storage), on the worker bundled once up front. N session clients of the package's own client (src/client, on `ws`, with their default backoff) and one broadcaster dial one room at once, on the runtime workerd's own port (a new one after a runtime restart, which the clients' WebSocket follows; `--storm-proxy` goes through wrangler's proxy workerd instead, which holds about four descriptors per socket and, under a limit of 20,000, cannot carry 5,000); *first open* runs from the first dial to every one of them open. The broadcaster then sends `{ b, p }` with 1,000 bytes of padding, which the room broadcasts to all, and the clients send numbered messages, at the same room-wide load at every size: 10,000 frames of ~1 KB a second from the broadcasts (10 broadcasts a second to 1,000 clients, 2 to 5,000) and 500 client messages a second (each of 1,000 clients one every 2 s, each of 5,000 one every 10 s). One object is one thread, and a load that grows with the room would keep it past its capacity before the drop (each of 5,000 sending every 2 s was 2,500 commits and 50,000 frames a second, and the reset call then waited minutes behind the backlog): the storm measures the recovery, not a backlog. After 3 s of that every socket of the room drops at once, in one of two ways. **A deploy**: the room's object is reset (`ctx.abort()` through the fixture's `POST /rooms/<room>/restart`), which is what a deploy or a runtime update does to an object on Cloudflare: every socket drops, memory is gone, storage stays, and the next request starts a new instance while the runtime stays up; *down* is the reset call's own time (the runtime tears the sockets down), and the times below run from the reset's request, so they include it. **A runtime restart**: the runtime's whole process group (wrangler and both workerd) is SIGKILLed, and `wrangler dev` is started again on the same `--persist-to` state and the same port; *down* runs from the SIGKILL to it being ready again (wrangler's start, not the package's work), and meanwhile every attempt a client makes is refused, so its backoff grows: with full jitter, the last of many clients waits out nearly the whole ceiling its backoff reached, which is of the order of the time the runtime was gone, whatever the server does once it is back. The stream goes on through both: what the clients send waits in their queues. *First back* runs from ready again (from the reset's request, for a deploy) to the first session open again; *median back* is the middle session's. *Back after restart* runs from ready again to every session open a second time; *caught up* from ready again to every client holding the first broadcast the broadcaster sent once all were back (delivery is in order, so holding it means holding every broadcast before it, the replayed ones included). The ratios divide those by *first open*; *down* is in neither. *Client CPU* is the bench process's (all the clients run in it, on one core) from ready again to caught up: near 100 % the clients, not the server, set the pace. Peak RSS is the runtime workerd's, sampled every 200 ms from the first dial to the drop (*before*) and from ready again to every client caught up (*after*); the proxy's over both. *Resumed* counts the sessions whose open after the drop was a resume (the broadcaster included); *resets* are sessions the server no longer knew, *duplicates* broadcasts received twice or out of order, *gaps* broadcasts a client never received: all three should be 0. Every phase is bounded (180 s per run); a run that does not recover says so under its table.",
    '',
  )
  return lines.join('\n')
}
