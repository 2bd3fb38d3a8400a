import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'

const READY_TIMEOUT_MS = 90_000
const STOP_TIMEOUT_MS = 10_000

/** Process groups started here and not yet gone; whatever happens, they are killed on exit. */
const running = new Set<number>()
process.once('exit', () => {
  for (const pgid of running) signalGroup(pgid, 'SIGKILL')
})

export interface Group {
  readonly pgid: number
  readonly pid: number
  /** Resolves with the first capture group of `pattern` once the output matches it. */
  waitFor(pattern: RegExp): Promise<string>
  output(): string
  /** SIGTERM to the whole group, then SIGKILL for whatever is still there; only ever this group. */
  stop(): Promise<void>
}

/** Starts a command in its own process group, so it and every process it starts can be stopped together. */
export function spawnGroup(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Group {
  const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const pgid = child.pid
  if (pgid === undefined) throw new Error(`${command} could not be spawned`)
  running.add(pgid)
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()))
  let output = ''
  // wrangler logs a line per request; it is drained here so its pipe never fills and stalls it.
  const keep = (chunk: string): void => {
    output = (output + chunk).slice(-20_000)
  }
  child.stdout.setEncoding('utf8').on('data', keep)
  child.stderr.setEncoding('utf8').on('data', keep)
  let ended: Promise<void> | undefined
  return {
    pgid,
    pid: pgid,
    waitFor: (pattern) => waitForOutput(child, () => output, pattern),
    output: () => output,
    stop: () => (ended ??= endGroup(pgid, exited)),
  }
}

function waitForOutput(child: ChildProcess, output: () => string, pattern: RegExp): Promise<string> {
  return new Promise((resolveReady, reject) => {
    const cleanUp = (): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
    }
    const onData = (): void => {
      const match = pattern.exec(output())?.[1]
      if (match === undefined) return
      cleanUp()
      resolveReady(match)
    }
    const onExit = (code: number | null, signal: string | null): void => {
      cleanUp()
      reject(
        new Error(
          `${child.spawnargs.join(' ')} exited (${String(code ?? signal)}) before it was ready:\n${output()}`,
        ),
      )
    }
    const timer = setTimeout(() => {
      cleanUp()
      reject(
        new Error(
          `${child.spawnargs.join(' ')} was not ready within ${String(READY_TIMEOUT_MS)} ms:\n${output()}`,
        ),
      )
    }, READY_TIMEOUT_MS)
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** SIGTERM to the group (for wrangler: itself and both workerd), then SIGKILL for whatever is still there. */
async function endGroup(pgid: number, exited: Promise<void>): Promise<void> {
  signalGroup(pgid, 'SIGTERM')
  if (!(await groupGone(pgid, exited))) {
    signalGroup(pgid, 'SIGKILL')
    if (!(await groupGone(pgid, exited))) {
      throw new Error(`process group ${String(pgid)} was still running after SIGKILL`)
    }
  }
  running.delete(pgid)
}

async function groupGone(pgid: number, exited: Promise<void>): Promise<boolean> {
  const deadline = Date.now() + STOP_TIMEOUT_MS
  // The leader is our child: it stays in the group as a zombie until Node reaps it.
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
