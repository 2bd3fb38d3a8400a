import { spawnProcessGroup } from '../../tools/processGroup.ts'

const READY_TIMEOUT_MS = 90_000
/** wrangler logs a line per request; over a whole run only the tail is worth keeping. */
const KEEP_OUTPUT_CHARS = 20_000

export interface Group {
  readonly pgid: number
  readonly pid: number
  /** Resolves with the first capture group of `pattern` once the output matches it. */
  waitFor(pattern: RegExp): Promise<string>
  output(): string
  /** SIGTERM to the whole group, then SIGKILL for whatever is still there; only ever this group. */
  stop(): Promise<void>
  /** SIGKILL to the whole group: a crash, with no chance to shut anything down. */
  kill(): Promise<void>
}

/** Starts a bench server in its own process group, so it and every process it starts can be stopped together. */
export function spawnGroup(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Group {
  const group = spawnProcessGroup(command, args, { ...options, keepLast: KEEP_OUTPUT_CHARS })
  return {
    pgid: group.pgid,
    pid: group.pgid,
    waitFor: (pattern) => group.waitFor(pattern, READY_TIMEOUT_MS),
    output: () => group.output(),
    stop: () => group.stop(),
    kill: () => group.kill(),
  }
}
