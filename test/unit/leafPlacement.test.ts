import { describe, expect, it } from 'vitest'
import { PlacementHints } from '../../src/mount/leafPlacement.js'

describe('PlacementHints', () => {
  it('asks the leaves from 0 for a room it has not placed yet', () => {
    expect(new PlacementHints().order('SHARDS/lobby', 4)).toEqual([0, 1, 2, 3])
  })

  it('starts where the last upgrade of the room went, and goes round to the leaf before it', () => {
    const hints = new PlacementHints()
    hints.placed('SHARDS/lobby', 2)
    expect(hints.order('SHARDS/lobby', 4)).toEqual([2, 3, 0, 1])
    expect(hints.order('SHARDS/other', 4)).toEqual([0, 1, 2, 3])
  })

  it('starts from 0 again when the room has fewer leaves than the one it remembers', () => {
    const hints = new PlacementHints()
    hints.placed('SHARDS/lobby', 5)
    expect(hints.order('SHARDS/lobby', 4)).toEqual([0, 1, 2, 3])
  })

  it('forgets the room placed longest ago when it remembers more than its limit', () => {
    const hints = new PlacementHints(2)
    hints.placed('a', 1)
    hints.placed('b', 1)
    hints.placed('a', 1)
    hints.placed('c', 1)
    expect(hints.order('b', 2)).toEqual([0, 1])
    expect(hints.order('a', 2)).toEqual([1, 0])
    expect(hints.order('c', 2)).toEqual([1, 0])
  })
})
