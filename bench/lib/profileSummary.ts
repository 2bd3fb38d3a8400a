/** The parts of a V8 CPU profile (DevTools protocol `Profiler.Profile`) read here. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
}

export interface SelfTime {
  /** The function's name, its file and line (1-based), or a V8 pseudo-frame such as `(idle)`. */
  frame: string
  /** Its share of all samples, in percent. */
  percent: number
}

function frameName({ functionName, url, lineNumber }: CpuProfile['nodes'][number]['callFrame']): string {
  const name = functionName === '' ? '(anonymous)' : functionName
  if (url === '') return name
  return `${name} ${url.split('/').slice(-1).join('')}:${String(lineNumber + 1)}`
}

/** Self time by function, largest first: where the samples landed, not who called them. */
export function selfTimes(profile: CpuProfile): SelfTime[] {
  const frames = new Map(profile.nodes.map((node) => [node.id, frameName(node.callFrame)]))
  const counts = new Map<string, number>()
  for (const id of profile.samples) {
    const frame = frames.get(id) ?? '(unknown)'
    counts.set(frame, (counts.get(frame) ?? 0) + 1)
  }
  const total = profile.samples.length
  return [...counts]
    .map(([frame, count]) => ({ frame, percent: (100 * count) / total }))
    .sort((a, b) => b.percent - a.percent)
}
