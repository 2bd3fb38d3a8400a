import { fixed, integer, pairedCell, perRound, table } from './report.ts'
import {
  BURST,
  BURSTS,
  CLIENT_KINDS,
  LEAVES,
  SINGLES,
  STREAM_IN_FLIGHT,
  TRIGGERS,
  type DeliverySample,
  type ShardsResults,
  type Trigger,
} from './shards.ts'
import { spread } from './stats.ts'
import { descriptorsFor } from './storm.ts'

/** The issue's target for a sharded broadcast: at most this many times an ordinary room's CPU per delivery. */
export const TARGET_RATIO = 1.2

const TRIGGER_LABELS: Record<Trigger, string> = {
  single: 'one message per turn (no batching possible)',
  burst: `${String(BURST)} messages in one turn (batched)`,
}

function cell(values: readonly number[], digits: number): string {
  return pairedCell(spread(values.filter(Number.isFinite)), digits)
}

const perDelivery = (s: DeliverySample): number => (s.cpuMs * 1000) / s.deliveries
const callsPerMessage = (s: DeliverySample): number => (s.leafCalls + s.rootCalls) / s.messages

function deliveryTable(results: ShardsResults): string {
  const rows: string[][] = []
  for (const clients of CLIENT_KINDS)
    for (const trigger of TRIGGERS) {
      const ordinary = results.deliveries[`${clients}/${trigger}/ordinary`] ?? []
      const sharded = results.deliveries[`${clients}/${trigger}/sharded`] ?? []
      const ratio = perRound(sharded, ordinary, perDelivery)
      rows.push([
        clients,
        TRIGGER_LABELS[trigger],
        integer.format(sharded.length),
        cell(ordinary.map(perDelivery), 2),
        cell(sharded.map(perDelivery), 2),
        `${pairedCell(ratio)} ${ratio.count > 0 && ratio.median <= TARGET_RATIO ? '✓' : '✗'}`,
        cell(
          sharded.map((s) => s.leafCalls / s.messages),
          2,
        ),
        cell(
          sharded.map((s) => s.rootCalls / s.messages),
          2,
        ),
        cell(sharded.map(callsPerMessage), 2),
      ])
    }
  return table(
    [
      'sockets',
      'broadcasts',
      'rounds',
      'ordinary room: worker CPU per delivery (µs)',
      `${String(LEAVES)} leaves: worker CPU per delivery (µs)`,
      `sharded ÷ ordinary (target ≤ ${fixed(TARGET_RATIO, 1)})`,
      'leaf → root calls per message',
      'root → leaf calls per message',
      'object-to-object calls per message',
    ],
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )
}

function ceilingTable(results: ShardsResults): string {
  const rows = results.ceiling.map((c) => [
    c.room === 'sharded' ? `${String(LEAVES)} leaves` : 'ordinary',
    integer.format(c.sockets),
    integer.format(c.count),
    c.room === 'sharded' ? integer.format((c.count * 1000) / c.acceptedMs) : '–',
    integer.format((c.count * 1000) / c.deliveredMs),
    integer.format((c.count * c.sockets * 1000) / c.deliveredMs),
    fixed((c.cpuMs * 1000) / c.count, 1),
    c.room === 'sharded' ? fixed((c.rootCalls + c.leafCalls) / c.count, 3) : '–',
    c.room === 'sharded' ? fixed((c.count * LEAVES) / c.rootCalls, 1) : '–',
  ])
  return table(
    [
      'room',
      'sockets',
      'RPC broadcasts',
      'numbered by the root (msg/s)',
      'on every leaf and socket (msg/s)',
      'deliveries/s',
      'worker CPU per message (µs)',
      'calls per message',
      'rows per batch',
    ],
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  )
}

/** The section as a document of its own (`--shards`). */
export function renderShards(results: ShardsResults): string {
  const m = results.machine
  const n = integer.format(results.clients)
  const clocks = new Set(Object.values(results.deliveries).flatMap((samples) => samples.map((s) => s.clock)))
  const failedCalls = Object.values(results.deliveries)
    .flat()
    .reduce((sum, s) => sum + s.failedCalls, 0)
  const lines: string[] = []
  lines.push(`# Sharded rooms: a broadcast over ${String(LEAVES)} leaves against one ordinary room`, '')
  lines.push(
    `Measured by \`npm run bench -- ${results.mode === 'quick' ? '--quick ' : ''}--shards\` on ${results.date.slice(0, 10)} at commit ${results.commit}${results.srcDirty ? ' (with uncommitted changes in src/)' : ''}, under \`wrangler dev\` through wrangler's proxy, with ${n} sockets per room. Figures, not assertions. Load average before ${results.loadBefore.map((v) => v.toFixed(2)).join(' / ')}, after ${results.loadAfter.map((v) => v.toFixed(2)).join(' / ')} (other work shared the machine); ${(results.durationMs / 60_000).toFixed(1)} min in all.`,
    '',
    `Machine: ${String(m.cpus)} × ${m.cpuModel}, ${fixed(m.memoryBytes / 1_073_741_824, 1)} GiB, ${m.kernel}; Node ${m.node}, wrangler ${m.wrangler}, workerd ${m.workerd}, ws ${m.ws}. Open files: soft limit ${results.fdLimit.soft}, hard ${results.fdLimit.hard} (about ${integer.format(descriptorsFor(4 * results.clients))} needed). Objects' storage ${results.state === 'memory' ? 'in memory (`/dev/shm`)' : 'on disk'}. Worker CPU from ${[...clocks].map((c) => (c === 'sched' ? "the scheduler's ns counters" : 'USER_HZ ticks')).join(' and ') || '—'}.`,
    '',
  )
  lines.push(
    `## Worker CPU per delivery, and calls per room-wide message`,
    '',
    `A client's handler broadcasts; every one of the ${n} sockets of its room gets each message. Medians over ${String(results.rounds)} rounds, interquartile range in brackets; the ratio is the median of each round's own ratio. Calls are counted by the objects that make them (\`shardStats()\`, src/object/shard/stats.ts), retries included; ${integer.format(failedCalls)} failed over the run.`,
    '',
    deliveryTable(results),
    '',
    `## The root's ceiling`,
    '',
    `One Worker request makes RPC broadcasts to the room's object, ${String(STREAM_IN_FLIGHT)} in flight, as fast as it answers: the root of a sharded room numbers and logs each and answers at once (its flushes to the leaves follow in its later turns); an ordinary room sends each to its sockets before it answers. *On every leaf and socket* runs until every leaf applied the last number and every socket had every message.`,
    '',
    ceilingTable(results),
    '',
  )
  if (results.problems.length > 0)
    lines.push(`Problems: ${results.problems.map((p) => `\`${p}\``).join('; ')}.`, '')
  lines.push(
    '## Method',
    '',
    `One \`wrangler dev\` of bench/servers/shards: the package's \`WebSocketObject\` twice in one script with the same handlers (bench/servers/behaviour.ts) and default options, an ordinary room at \`/ws/<room>\` and a room of ${String(LEAVES)} leaves of ${integer.format(results.clients / LEAVES)} sockets each at \`/shards/<room>\` (\`shards: { count: ${String(LEAVES)}, socketsPerShard: ${String(results.clients / LEAVES)} }\`); placement fills the leaves in order, so each holds exactly ${integer.format(results.clients / LEAVES)}. Four rooms stay open through the run: plain and session sockets (bench/lib/sessionSocket.ts, acks as the package's client sends them), each in an ordinary and a sharded room, ${n} sockets each, ${integer.format(4 * results.clients)} in all, opened 25 handshakes at a time into either room (upgrades racing for a sharded leaf's last places are sent on to the next leaf). In each round, each room in turn (the order rotates), the first socket sends \`{ "broadcast": 1 }\` ${String(SINGLES)} times, each waited for until all ${n} sockets have it, then \`{ "broadcast": ${String(BURST)} }\` ${String(BURSTS)} times likewise; the handler calls \`conn.manager.broadcast\` once per message. A single is alone in its turn on the leaf, on the root and on every leaf, so it costs what the room costs without batching: one publication and one batch per leaf for each message. A burst is what batching does with a turn's worth of messages. *Worker CPU* is the runtime workerd's over the window (every object runs in that one process under \`wrangler dev\`: the root, the four leaves and the Worker), divided by the deliveries (messages × ${n}); wrangler's proxy, which relays every frame, is not in it. One round of each is run first and not counted. The ceiling's stream is RPC broadcasts \`{ seq }\` from a Worker route (\`POST /stream/<kind>/<room>\`), as many as the table says, into an ordinary room with no socket (what the Worker's RPC calls and an object's turn cost alone), an empty sharded room (the root numbering and logging, each leaf logging its copy), then into the plain rooms of ${n} sockets (fewer there: about 200,000 deliveries' worth). With sockets, the rate every socket has the stream at is bound by wrangler's proxy and this one Node process reading every frame on a shared 2-core machine, not by the objects: the worker CPU per message is the figure to compare.`,
    '',
    `Under \`wrangler dev\` the root, the leaves and the Worker share one thread; deployed, each object has its own, so the sharded room's figures here are its total CPU, not how fast any one object goes. Each RPC between objects is a call inside one process here; in Cloudflare's network it may cross machines, which adds latency (not CPU) that this machine cannot show.`,
    '',
  )
  return lines.join('\n')
}
