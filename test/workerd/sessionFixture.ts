import { env } from 'cloudflare:workers'
import { expect } from 'vitest'
import { sessions, type SessionsObject } from './fixture/endpoints/sessions.js'
import { SessionClient, type SessionOpenOptions } from './sessionClient.js'

/** A room of the sessions fixture: resume on, with a window no test outlasts. */
export function sessionsRoom(name: string): DurableObjectStub<SessionsObject> {
  return sessions.room<SessionsObject>(env, name)
}

/** Opens a session on a sessions fixture's `path` and reads its open handler's greeting. */
export async function opened(path: string, options: SessionOpenOptions = {}): Promise<SessionClient> {
  const session = await SessionClient.open(path, options)
  expect(await session.nextPayload()).toBe(`open:${String(session.id)}:false`)
  return session
}
