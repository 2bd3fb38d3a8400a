import { describe, expect, it } from 'vitest'
import {
  closedByServer,
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
  'draining',
  'closedByPeer',
  'suspended',
  'replaced',
]
const EVENTS: readonly LifecycleEvent[] = [
  'stored',
  'serverClose',
  'drain',
  'peerClose',
  'suspend',
  'replace',
  'expire',
]

// Written out by hand from the states' documentation, not derived from the module's table.
const ALLOWED: Readonly<Record<ConnectionState, Partial<Record<LifecycleEvent, ConnectionState>>>> = {
  opening: {
    stored: 'open',
    serverClose: 'closedByServer',
    drain: 'draining',
    peerClose: 'closedByPeer',
    suspend: 'suspended',
    replace: 'replaced',
  },
  open: {
    serverClose: 'closedByServer',
    drain: 'draining',
    peerClose: 'closedByPeer',
    suspend: 'suspended',
    replace: 'replaced',
  },
  suspended: { replace: 'replaced', expire: 'closedByPeer' },
  closedByServer: {},
  draining: {},
  closedByPeer: {},
  replaced: {},
}

const pairs = STATES.flatMap((state) => EVENTS.map((event) => [state, event] as const))

describe('move(state, event)', () => {
  it.each(pairs)('from %s on %s goes where the lifecycle says, or nowhere', (state, event) => {
    expect(move(state, event)).toBe(ALLOWED[state][event])
  })

  it('never leaves a final state: a second close, a late suspend or a resume after the end mean nothing', () => {
    for (const state of ['closedByServer', 'draining', 'closedByPeer', 'replaced'] as const) {
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
    // A late close of the lost socket is no final close of the session.
    expect(move('suspended', 'peerClose')).toBeUndefined()
  })

  it('expires only a suspended session', () => {
    expect(STATES.filter((state) => move(state, 'expire') !== undefined)).toEqual(['suspended'])
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

describe('closedByServer(state)', () => {
  it('is true once the server sent its close frame, whether it drops or drains what was queued', () => {
    expect(STATES.filter(closedByServer)).toEqual(['closedByServer', 'draining'])
  })
})
