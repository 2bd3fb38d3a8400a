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

/** Offers `session`'s token at `path` and checks it resumes nothing: a new session (a reset), closed again at once. */
export async function expectEnded(session: SessionClient, path: string): Promise<SessionClient> {
  const again = await session.resume(path)
  expect(again.resumed).toBe(false)
  again.close(1000)
  await again.whenClosed()
  return again
}
