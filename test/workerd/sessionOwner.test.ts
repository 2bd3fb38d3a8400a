import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { SESSION_PROTOCOL, resumeEntry } from '../../src/shared/sessionProtocol.js'
import { ownedSessions, type OwnedSessionsObject } from './fixture/endpoints/sessions.js'
import { Client, upgrade } from './client.js'
import { opened } from './sessionFixture.js'

/** `resume.owner`: a session belongs to who opened it, as the app names them; a token alone is not enough. */
function ownedRoom(name: string): DurableObjectStub<OwnedSessionsObject> {
  return ownedSessions.room<OwnedSessionsObject>(env, name)
}

describe('resume.owner', () => {
  it('refuses a resume with a token taken by someone else with 3904, runs nothing for it, and the owner still resumes', async () => {
    const room = ownedRoom('stolen')
    const alice = await opened('/owned-sessions/stolen?user=alice')
    alice.send('set:secret=yes')
    await alice.sync()
    await alice.drop(room)

    const response = await upgrade('/owned-sessions/stolen?user=mallory', {
      'Sec-WebSocket-Protocol': `${SESSION_PROTOCOL}, ${resumeEntry(alice.position)}`,
    })
    expect(response.status).toBe(101)
    if (response.webSocket === null) throw new Error('a 101 without a socket')
    const thief = new Client(response.webSocket)
    expect(await thief.whenClosed()).toMatchObject({
      code: 3904,
      reason: 'Session belongs to another client',
    })
    // Nothing ran for the thief: no open, no id spent, and the session is still suspended, not ended.
    const log = await room.log()
    expect(log.filter((entry) => entry.event === 'open')).toHaveLength(1)
    expect(log.filter((entry) => entry.event === 'close')).toEqual([])
    expect(await room.connectionIds()).toEqual([])

    const back = await alice.resume('/owned-sessions/stolen?user=alice')
    expect(back.welcome).toMatchObject({ id: alice.id, resumed: true })
    expect(await back.nextPayload()).toBe(`open:${String(alice.id)}:true`)
    expect((await room.log()).filter((entry) => entry.event === 'open').at(-1)).toMatchObject({
      data: '{"secret":"yes"}',
    })
    back.close(1000)
    await back.whenClosed()
  })

  it('lets a new session of another owner start as usual, with its own id', async () => {
    const first = await opened('/owned-sessions/two-users?user=alice')
    const second = await opened('/owned-sessions/two-users?user=bob')
    expect(second.id).not.toBe(first.id)
    first.close(1000)
    second.close(1000)
    await Promise.all([first.whenClosed(), second.whenClosed()])
  })
})
