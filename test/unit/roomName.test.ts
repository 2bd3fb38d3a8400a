import { describe, expect, it } from 'vitest'
import { MAX_ROOM_NAME_LENGTH, isRoomName, roomNameProblem } from '../../src/shared/roomName.js'

describe('roomNameProblem(name)', () => {
  it.each(['lobby', 'a', 'A-1_b', 'team.alpha', 'v1.2.3', '_', '-', 'x'.repeat(MAX_ROOM_NAME_LENGTH)])(
    'accepts %j',
    (name) => {
      expect(roomNameProblem(name)).toBeUndefined()
      expect(isRoomName(name)).toBe(true)
    },
  )

  it.each([
    ['', /empty/],
    ['x'.repeat(MAX_ROOM_NAME_LENGTH + 1), /at most 64 characters/],
    ['.hidden', /single inner dots/],
    ['trailing.', /single inner dots/],
    ['a..b', /single inner dots/],
    ['a/b', /only letters, digits/],
    ['a%2Fb', /only letters, digits/],
    ['a b', /only letters, digits/],
    ['caf\u00e9', /only letters, digits/],
    ['lobby\n', /only letters, digits/],
  ])('refuses %j, saying why', (name, why) => {
    expect(roomNameProblem(name)).toMatch(why)
    expect(isRoomName(name)).toBe(false)
  })

  it.each([undefined, null, 42, ['lobby'], { name: 'lobby' }])('refuses %j, which is no string', (name) => {
    expect(roomNameProblem(name)).toBe('a room name must be a string')
    expect(isRoomName(name)).toBe(false)
  })
})
