import { env } from 'cloudflare:workers'
import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { Connection, type Manager } from '../../src/index.js'
import { eventually, join, leave, stubOf, type Client } from './client.js'

const ids = stubOf(env.IDS)

async function openIds(client: Client): Promise<number[]> {
  return JSON.parse(await client.ask('ids')) as number[]
}

describe('conn.id', () => {
  it('numbers the connections of an object 1, 2, 3… in the order they connect', async () => {
    const first = await join('/ids')
    const second = await join('/ids')
    const third = await join('/ids')
    expect([first.id, second.id, third.id]).toEqual([1, 2, 3])
    await leave(first.client, second.client, third.client)
  })

  it('never hands out the id of a connection that has closed', async () => {
    const leaving = await join('/ids')
    leaving.client.close(1000)
    await leaving.client.whenClosed()
    const next = await join('/ids')
    expect(next.id).toBe(leaving.id + 1)
    await leave(next.client)
  })

  it('keeps counting after the object hibernates', async () => {
    const before = await join('/ids')
    await evictDurableObject(ids, { webSockets: 'hibernate' })
    const after = await join('/ids')
    expect(after.id).toBe(before.id + 1)
    expect(await openIds(before.client)).toEqual(expect.arrayContaining([before.id, after.id]))
    await leave(before.client, after.client)
  })

  it('keeps counting after an eviction that closes every socket', async () => {
    const before = await join('/ids')
    await evictDurableObject(ids, { webSockets: 'close' })
    expect((await before.client.whenClosed()).wasClean).toBe(false)
    const after = await join('/ids')
    expect(after.id).toBe(before.id + 1)
    await leave(after.client)
  })
})

describe('manager.connections()', () => {
  it('is a Map of the open connections keyed by their id', async () => {
    const a = await join('/ids')
    const b = await join('/ids')
    const entries = await runInDurableObject(ids, (instance) => {
      // `manager` is protected: the subclass's own methods use it; the test reaches in.
      const manager = (instance as unknown as { manager: Manager<unknown, object, unknown> }).manager
      const connections = manager.connections()
      expect(connections).toBeInstanceOf(Map)
      return [...connections].map(([key, conn]) => ({
        key,
        id: conn.id,
        isConnection: conn instanceof Connection,
      }))
    })
    expect(entries).toEqual(
      expect.arrayContaining([
        { key: a.id, id: a.id, isConnection: true },
        { key: b.id, id: b.id, isConnection: true },
      ]),
    )
    expect(await openIds(a.client)).toEqual(expect.arrayContaining([a.id, b.id]))
    await leave(a.client, b.client)
  })

  it('drops a connection the moment the server closes it', async () => {
    const kicked = await join('/ids')
    const kicker = await join('/ids')
    const reply = JSON.parse(await kicker.client.ask(`kick:${String(kicked.id)}`)) as number[]
    expect(reply).toContain(kicker.id)
    expect(reply).not.toContain(kicked.id)
    expect(await kicked.client.whenClosed()).toMatchObject({ code: 4001, reason: 'kicked' })
    await leave(kicker.client)
  })

  it('drops a connection once its client has closed it', async () => {
    const leaving = await join('/ids')
    const staying = await join('/ids')
    expect(await ids.connectionIds()).toEqual(expect.arrayContaining([leaving.id, staying.id]))
    leaving.client.close(1000, 'bye')
    await leaving.client.whenClosed()
    const after = await eventually(
      () => ids.connectionIds(),
      (open) => !open.includes(leaving.id),
    )
    expect(after).toContain(staying.id)
    expect(await openIds(staying.client)).not.toContain(leaving.id)
    await leave(staying.client)
  })

  it('is rebuilt from the sockets after the object hibernates', async () => {
    const a = await join('/ids')
    const b = await join('/ids')
    const before = await ids.connectionIds()
    expect(before).toEqual(expect.arrayContaining([a.id, b.id]))
    await evictDurableObject(ids, { webSockets: 'hibernate' })
    const byId = (x: number, y: number): number => x - y
    expect((await ids.connectionIds()).sort(byId)).toEqual(before.sort(byId))
    await leave(a.client, b.client)
  })
})
