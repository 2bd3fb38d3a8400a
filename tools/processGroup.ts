import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'

const STOP_TIMEOUT_MS = 10_000

/** Process groups started here and not yet gone; whatever happens, they are killed when this process exits. */
const running = new Set<number>()
process.once('exit', () => {
  for (const pgid of running) signalGroup(pgid, 'SIGKILL')
})

/** A command and every process it starts, in a process group of their own. */
export interface ProcessGroup {
  /** The group's id, which is also the pid of the command that leads it. */
  readonly pgid: number
  /** What the command printed so far, stdout and stderr together. */
  output(): string
  /**
   * Resolves with the first capture group of `pattern` once the output
   * matches it; rejects, with the output, if the command exits or
   * `timeoutMs` passes first.
   */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>
  /** SIGTERM to the whole group, then SIGKILL for whatever is still there; only ever this group. */
  stop(): Promise<void>
  /** SIGKILL to the whole group: a crash, with no chance to shut anything down. */
  kill(): Promise<void>
}

export interface ProcessGroupOptions {
  cwd: string
  env: NodeJS.ProcessEnv
  /** What error messages call the command; its command line by default. */
  name?: string
  /** Keep only the last this many characters of output, for a command that logs without end. */
  keepLast?: number
}

/**
 * Starts a command in its own process group, so it and every process it
 * starts can be stopped together: wrangler dev runs two workerd processes
 * (a proxy and the runtime) that a signal to wrangler alone leaves behind.
 */
export function spawnProcessGroup(
  command: string,
  args: string[],
  options: ProcessGroupOptions,
): ProcessGroup {
  const { cwd, env, name = [command, ...args].join(' '), keepLast } = options
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const pgid = child.pid
  if (pgid === undefined) throw new Error(`${name} could not be spawned`)
  running.add(pgid)
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()))
  let output = ''
  // Drained even when nobody reads it, so a full pipe never stalls the command.
  const keep = (chunk: string): void => {
    output = keepLast === undefined ? output + chunk : (output + chunk).slice(-keepLast)
  }
  child.stdout.setEncoding('utf8').on('data', keep)
  child.stderr.setEncoding('utf8').on('data', keep)
  let ended: Promise<void> | undefined
  const end = (signal: NodeJS.Signals): Promise<void> => (ended ??= endGroup(name, pgid, exited, signal))
  return {
    pgid,
    output: () => output,
    waitFor: (pattern, timeoutMs) => waitForOutput(child, name, () => output, pattern, timeoutMs),
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  }
}

function waitForOutput(
  child: ChildProcess,
  name: string,
  output: () => string,
  pattern: RegExp,
  timeoutMs: number,
): Promise<string> {
  return new Promise((resolveMatch, reject) => {
    const cleanUp = (): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
    }
    const fail = (why: string): void => {
      cleanUp()
      reject(new Error(`${name} ${why}:\n${output()}`))
    }
    const onData = (): void => {
      const match = pattern.exec(output())?.[1]
      if (match === undefined) return
      cleanUp()
      resolveMatch(match)
    }
    const onExit = (code: number | null, signal: string | null): void => {
      fail(`exited (${String(code ?? signal)}) before it was ready`)
    }
    const timer = setTimeout(() => fail(`was not ready within ${String(timeoutMs)} ms`), timeoutMs)
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** Signals the group, waits (bounded) for every member to go, and SIGKILLs whatever is left. */
async function endGroup(
  name: string,
  pgid: number,
  exited: Promise<void>,
  signal: NodeJS.Signals,
): Promise<void> {
  signalGroup(pgid, signal)
  let gone = await groupGone(pgid, exited)
  if (!gone && signal !== 'SIGKILL') {
    signalGroup(pgid, 'SIGKILL')
    gone = await groupGone(pgid, exited)
  }
  if (!gone) throw new Error(`${name} (process group ${String(pgid)}) was still running after SIGKILL`)
  running.delete(pgid)
}

async function groupGone(pgid: number, exited: Promise<void>): Promise<boolean> {
  const deadline = Date.now() + STOP_TIMEOUT_MS
  // The leader is our child: it stays a zombie, still in the group, until Node reaps it.
  const leaderGone = await Promise.race([
    exited.then(() => true),
    sleep(STOP_TIMEOUT_MS, false, { ref: false }),
  ])
  if (!leaderGone) return false
  while (Date.now() < deadline) {
    if (!signalGroup(pgid, 0)) return true
    await sleep(50)
  }
  return false
}

/** Returns false once no process is left in the group. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw error
  }
}
