import { env } from 'cloudflare:workers'
import { runDurableObjectAlarm } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { DurableWebSocketError, websocket } from '../../src/index.js'
import { AGED_MAX_AGE_MS, agedSessions, type AgedSessionsObject } from './fixture/endpoints/sessions.js'
import { sleep } from './client.js'
import { closesOf } from './closesOf.js'
import { evictWithSockets } from './sessionClient.js'
import { thrownBy } from './thrownBy.js'
import { expectEnded, opened } from './sessionFixture.js'

/** `resume.maxAge`: a session ends that long after it began, connected or not, also across restarts. */
function agedRoom(name: string): DurableObjectStub<AgedSessionsObject> {
  return agedSessions.room<AgedSessionsObject>(env, name)
}

describe('resume.maxAge', () => {
  it('ends a connected session that outlived it: the alarm closes it with 3905, close runs once, and its token resumes nothing', async () => {
    const room = agedRoom('live')
    const session = await opened('/aged-sessions/live')
    await sleep(AGED_MAX_AGE_MS + 50)
    // The runtime may have run the alarm already; then this one finds none to run.
    await runDurableObjectAlarm(room)
    expect(await session.whenClosed()).toMatchObject({ code: 3905, reason: 'Session too old' })
    expect(await closesOf(room, session.id)).toMatchObject([{ code: 3905 }])
    await expectEnded(session, '/aged-sessions/live')
  })

  it('ends a suspended session that outlived it, whose resume then gets a new session', async () => {
    const room = agedRoom('suspended')
    const session = await opened('/aged-sessions/suspended')
    await session.drop(room)
    await sleep(AGED_MAX_AGE_MS + 50)
    await expectEnded(session, '/aged-sessions/suspended')
    expect(await closesOf(room, session.id)).toMatchObject([{ code: 3905 }])
  })

  it('ends a session whose object restarted, from the alarm alone: no resume needed', async () => {
    const room = agedRoom('restarted')
    const session = await opened('/aged-sessions/restarted')
    await evictWithSockets(room, session)
    await sleep(AGED_MAX_AGE_MS + 50)
    await runDurableObjectAlarm(room)
    expect(await closesOf(room, session.id)).toMatchObject([{ code: 3905 }])
  })

  it('throws ERR_DWS_INVALID_OPTIONS for a maxAge that is not a positive whole number of ms', () => {
    for (const maxAge of [0, -1, 1.5, '1000']) {
      const error = thrownBy(() => websocket({ binding: 'AGED_TEST', resume: { maxAge: maxAge as number } }))
      expect(error).toBeInstanceOf(DurableWebSocketError)
      expect(error).toMatchObject({ code: 'ERR_DWS_INVALID_OPTIONS' })
      expect((error as Error).message).toContain('resume.maxAge')
    }
  })
})
