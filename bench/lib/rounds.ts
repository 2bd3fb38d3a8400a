import type { Sample } from './measure.ts'
import type { ScenarioResult } from './results.ts'
import { measure, type Endpoint, type Scenario, type Timing } from './scenarios.ts'
import { rotate } from './servers.ts'

/** How a section runs its rounds. */
export interface Rounds {
  rounds: number
  timing: Timing
  say(line: string): void
  /** Called after each measurement of a server, with its key: the wake-up waits on the last one. */
  measured?(key: string): void
}

function perOp(sample: Sample): string {
  return `${((sample.workerCpuMs * 1000) / Math.max(sample.ops, 1)).toFixed(1)} µs/op, ${((sample.ops * 1000) / sample.wallMs).toFixed(0)} op/s`
}

/**
 * The same server, seen through rooms of its own for `round`: a room no
 * earlier measurement used, so a new Durable Object. Under wrangler dev an
 * object's CPU per message grows with every message it has handled since it
 * was constructed (about doubling over 100,000 echoes) and falls back when it
 * is evicted; a long-lived room would make each round's figure depend on how
 * many messages that server had handled before, and on whether the object
 * happened to be evicted in between.
 */
function freshRooms(endpoint: Endpoint, round: number): Endpoint {
  return { ...endpoint, url: (room) => endpoint.url(`${room}-r${String(round + 1)}`) }
}

/** One measured span: on `kept` state when given, else on fresh rooms set up before and torn down after. */
async function measureOnce<State>(
  scenario: Scenario<State>,
  endpoint: Endpoint,
  round: number,
  timing: Timing,
  kept: Map<string, State> | undefined,
): Promise<Sample> {
  if (kept !== undefined) {
    const state = kept.get(endpoint.key)
    if (state === undefined) throw new Error(`no state for ${endpoint.key}`)
    return (await measure(scenario, state, endpoint, timing)).sample()
  }
  const fresh = freshRooms(endpoint, round)
  const state = await scenario.setup(fresh)
  try {
    return (await measure(scenario, state, fresh, timing)).sample()
  } finally {
    await scenario.teardown(state)
  }
}

/**
 * Runs interleaved rounds of a scenario on every endpoint, in an order that
 * rotates from round to round. Each measurement sets the scenario up on
 * fresh rooms and tears it down after, unless `kept` holds a state per
 * endpoint to measure in every round instead.
 */
export async function runScenario<State, Key extends string>(
  scenario: Scenario<State>,
  endpoints: readonly Endpoint[],
  plan: Rounds,
  loopback: Endpoint | undefined,
  kept?: Map<string, State>,
): Promise<ScenarioResult<Key>> {
  const result: ScenarioResult<Key> = {
    scenario: {
      id: scenario.id,
      title: scenario.title,
      unit: scenario.unit,
      description: scenario.description,
    },
    samples: {},
    loopback: [],
    freshRooms: kept === undefined,
  }
  for (let round = 0; round < plan.rounds; round++) {
    for (const endpoint of rotate(endpoints, round)) {
      const sample = await measureOnce(scenario, endpoint, round, plan.timing, kept)
      ;(result.samples[endpoint.key as Key] ??= []).push(sample)
      plan.measured?.(endpoint.key)
      plan.say(`${scenario.id} round ${String(round + 1)} ${endpoint.key}: ${perOp(sample)}`)
    }
    // The client's ceiling needs one sample, not a median of many: it only has to be far above the rest.
    if (loopback !== undefined && round === 0) {
      const sample = await measureOnce(scenario, loopback, round, plan.timing, kept)
      result.loopback.push(sample)
      plan.say(`${scenario.id} loopback: ${((sample.ops * 1000) / sample.wallMs).toFixed(0)} op/s`)
    }
  }
  return result
}
