import { describe, expect, it } from 'vitest'
import {
  handlesQueued,
  isLive,
  move,
  type ConnectionState,
  type LifecycleEvent,
} from '../../src/core/lifecycle.js'

const STATES: readonly ConnectionState[] = [
  'opening',
  'open',
  'closedByServer',
  'closedByPeer',
  'suspended',
  'replaced',
]
const EVENTS: readonly LifecycleEvent[] = ['stored', 'serverClose', 'peerClose', 'suspend', 'replace']

// Written out by hand from the states' documentation, not derived from the module's table.
const ALLOWED: Readonly<Record<ConnectionState, Partial<Record<LifecycleEvent, ConnectionState>>>> = {
  opening: {
    stored: 'open',
    serverClose: 'closedByServer',
    peerClose: 'closedByPeer',
    suspend: 'suspended',
    replace: 'replaced',
  },
  open: {
    serverClose: 'closedByServer',
    peerClose: 'closedByPeer',
    suspend: 'suspended',
    replace: 'replaced',
  },
  suspended: { replace: 'replaced', peerClose: 'closedByPeer' },
  closedByServer: {},
  closedByPeer: {},
  replaced: {},
}

const pairs = STATES.flatMap((state) => EVENTS.map((event) => [state, event] as const))

describe('move(state, event)', () => {
  it.each(pairs)('from %s on %s goes where the lifecycle says, or nowhere', (state, event) => {
    expect(move(state, event)).toBe(ALLOWED[state][event])
  })

  it('never leaves a final state: a second close, a late suspend or a resume after the end mean nothing', () => {
    for (const state of ['closedByServer', 'closedByPeer', 'replaced'] as const) {
      expect(EVENTS.map((event) => move(state, event))).toEqual(EVENTS.map(() => undefined))
    }
  })

  it('stores a connection only once, while it is opening', () => {
    expect(STATES.filter((state) => move(state, 'stored') !== undefined)).toEqual(['opening'])
  })

  it('lets a suspended session only resume elsewhere or end when its window does, never close from the server', () => {
    expect(move('suspended', 'serverClose')).toBeUndefined()
    expect(move('suspended', 'suspend')).toBeUndefined()
    expect(move('suspended', 'stored')).toBeUndefined()
  })
})

describe('isLive(state)', () => {
  it('is true only before either side closed, the session was suspended or replaced', () => {
    expect(STATES.filter(isLive)).toEqual(['opening', 'open'])
  })
})

describe('handlesQueued(state)', () => {
  it('still handles queued messages unless the server closed the connection or its session went on elsewhere', () => {
    expect(STATES.filter((state) => !handlesQueued(state))).toEqual(['closedByServer', 'replaced'])
  })
})
