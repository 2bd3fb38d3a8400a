import { env } from 'cloudflare:workers'
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { DEFAULT_HEARTBEAT } from '../../src/index.js'
import {
  IDLE_TIMEOUT_MS,
  customHeartbeat,
  heartbeat,
  idle,
  noHeartbeat,
  type IdleObject,
} from './fixture/endpoints/liveness.js'
import type { FixtureObject } from './fixture/record.js'
import { join, leave, sleep } from './client.js'
import { closesOf } from './closesOf.js'

/** How often an active client speaks while the others go idle: far inside IDLE_TIMEOUT_MS. */
const BEAT_MS = 50

async function messagesSeen(stub: DurableObjectStub<FixtureObject>): Promise<string[]> {
  return (await stub.log()).filter((entry) => entry.event === 'message').map((entry) => String(entry.message))
}

function alarmOf(stub: DurableObjectStub<FixtureObject>): Promise<number | null> {
  return runInDurableObject(stub, (_instance, state) => state.storage.getAlarm())
}

/**
 * Moves the alarm far off, so the reaper runs only when the test runs it and
 * a slow moment of the machine cannot reap an active connection. Accept keeps
 * an alarm that is already set.
 */
async function holdAlarm(stub: DurableObjectStub<FixtureObject>): Promise<number> {
  const held = Date.now() + 60_000
  await runInDurableObject(stub, (_instance, state) => state.storage.setAlarm(held))
  return held
}

/** Lets more than IDLE_TIMEOUT_MS pass while `beat` runs every BEAT_MS. */
async function outlastIdleTimeout(beat: () => Promise<void> = () => Promise.resolve()): Promise<void> {
  const until = Date.now() + IDLE_TIMEOUT_MS + 3 * BEAT_MS
  while (Date.now() < until) {
    await beat()
    await sleep(BEAT_MS)
  }
}

describe('heartbeat: the default { request: "ping", response: "pong" }', () => {
  const room = heartbeat.room<FixtureObject>(env, 'hb-default')

  it('is answered by the runtime: the client gets pong and the message handler never sees ping', async () => {
    const { client } = await join('/heartbeat/hb-default')
    expect(DEFAULT_HEARTBEAT).toEqual({ request: 'ping', response: 'pong' })
    expect(await client.ask('ping')).toBe('pong')
    expect(await client.ask('hello')).toBe('echo:hello')
    expect(await client.ask('ping')).toBe('pong')
    // Only the exact text is a heartbeat.
    expect(await client.ask('ping ')).toBe('echo:ping ')
    expect(await messagesSeen(room)).toEqual(['hello', 'ping '])
    await leave(client)
  })

  it('is still answered after the object hibernated, and the next message is handled as usual', async () => {
    const { client } = await join('/heartbeat/hb-default')
    await evictDurableObject(room, { webSockets: 'hibernate' })
    expect(await client.ask('ping')).toBe('pong')
    expect(await client.ask('after the nap')).toBe('echo:after the nap')
    expect(await messagesSeen(room)).not.toContain('ping')
    await leave(client)
  })
})

describe('heartbeat: { request, response }', () => {
  it('answers the given request text with the given response instead, and lets ping through', async () => {
    const room = customHeartbeat.room<FixtureObject>(env, 'hb-custom')
    const { client } = await join('/heartbeat-custom/hb-custom')
    expect(await client.ask('are you there?')).toBe('here')
    expect(await client.ask('ping')).toBe('echo:ping')
    expect(await messagesSeen(room)).toEqual(['ping'])
    await leave(client)
  })
})

describe('heartbeat: false', () => {
  it('lets ping reach the message handler like any other message', async () => {
    const room = noHeartbeat.room<FixtureObject>(env, 'hb-off')
    const { client } = await join('/heartbeat-off/hb-off')
    expect(await client.ask('ping')).toBe('echo:ping')
    expect(await messagesSeen(room)).toEqual(['ping'])
    await leave(client)
  })
})

describe('idleTimeout', () => {
  it('sets no alarm when it is not given', async () => {
    const room = heartbeat.room<FixtureObject>(env, 'no-idle')
    const { client } = await join('/heartbeat/no-idle')
    expect(await alarmOf(room)).toBeNull()
    expect(await runDurableObjectAlarm(room)).toBe(false)
    await leave(client)
  })

  it('sets an alarm when a connection is accepted', async () => {
    const room = idle.room<IdleObject>(env, 'idle-arm')
    expect(await alarmOf(room)).toBeNull()
    const { client, id } = await join('/idle/idle-arm')
    expect(await room.log()).toEqual([{ event: 'open', id, alarmSet: true }])
    await leave(client)
  })

  it('moves a later alarm the object set for itself earlier, to the time reaping needs', async () => {
    const room = idle.room<IdleObject>(env, 'idle-shared-alarm')
    const late = Date.now() + 3_600_000
    await runInDurableObject(room, (_instance, state) => state.storage.setAlarm(late))
    const { client } = await join('/idle/idle-shared-alarm')
    const afterAccept = await alarmOf(room)
    expect(afterAccept).not.toBeNull()
    expect(afterAccept!).toBeLessThan(late)
    await leave(client)
  })

  it('closes connections silent for that long with 1001 "Idle timeout", once, keeps those that sent a message or a ping, and re-arms', async () => {
    const room = idle.room<IdleObject>(env, 'idle-reap')
    const held = await holdAlarm(room)
    const silent = await join('/idle/idle-reap')
    const chatty = await join('/idle/idle-reap')
    const pinging = await join('/idle/idle-reap')
    await outlastIdleTimeout(async () => {
      expect(await chatty.client.ask('still here')).toBe('echo:still here')
      expect(await pinging.client.ask('ping')).toBe('pong')
    })
    expect(await runDurableObjectAlarm(room)).toBe(true)
    // Re-armed for when a kept connection could go idle next, in place of the held time.
    expect(await alarmOf(room)).toBeLessThan(held)
    await holdAlarm(room)

    expect(await silent.client.whenClosed()).toMatchObject({ code: 1001, reason: 'Idle timeout' })
    expect(await closesOf(room, silent.id)).toEqual([
      { event: 'close', id: silent.id, code: 1001, reason: 'Idle timeout' },
    ])
    expect(await room.ids()).toEqual([chatty.id, pinging.id])
    expect(await chatty.client.ask('still open')).toBe('echo:still open')
    expect(await pinging.client.ask('ping')).toBe('pong')
    // The pings kept their connection alive without ever reaching the handler.
    const log = await room.log()
    expect(log.filter((entry) => entry.id === pinging.id && entry.event === 'message')).toEqual([])
    await leave(chatty.client, pinging.client)
  })

  it('arms no new alarm once the last connection is reaped', async () => {
    const room = idle.room<IdleObject>(env, 'idle-last')
    const silent = await join('/idle/idle-last')
    await outlastIdleTimeout()
    // The alarm set at accept goes off by itself meanwhile; running it again changes nothing.
    await runDurableObjectAlarm(room)
    expect(await silent.client.whenClosed()).toMatchObject({ code: 1001, reason: 'Idle timeout' })
    expect(await closesOf(room, silent.id)).toHaveLength(1)
    expect(await alarmOf(room)).toBeNull()
  })

  it('reaps by the activity times kept across forced hibernations', async () => {
    const room = idle.room<IdleObject>(env, 'idle-nap')
    const held = await holdAlarm(room)
    const silent = await join('/idle/idle-nap')
    const chatty = await join('/idle/idle-nap')
    const pinging = await join('/idle/idle-nap')
    await evictDurableObject(room, { webSockets: 'hibernate' })
    await outlastIdleTimeout(async () => {
      await chatty.client.ask('still here')
      await pinging.client.ask('ping')
    })
    // The reaper runs on an instance rebuilt from the attachments and the runtime's ping times.
    await evictDurableObject(room, { webSockets: 'hibernate' })
    expect(await runDurableObjectAlarm(room)).toBe(true)
    expect(await alarmOf(room)).toBeLessThan(held)
    await holdAlarm(room)

    expect(await silent.client.whenClosed()).toMatchObject({ code: 1001, reason: 'Idle timeout' })
    expect(await closesOf(room, silent.id)).toHaveLength(1)
    expect(await room.ids()).toEqual([chatty.id, pinging.id])
    expect(await chatty.client.ask('after the nap')).toBe('echo:after the nap')
    await leave(chatty.client, pinging.client)
  })
})
