import { env } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { BATCH_BYTES } from '../../src/object/session/replaySender.js'
import { PAGED_WINDOW, pagedSessions, type PagedSessionsObject } from './fixture/endpoints/sessions.js'
import { evictWithSockets } from './sessionClient.js'
import { opened, sessionsRoom } from './sessionFixture.js'

/**
 * A client that offers `dws.session.batches` gets what a replay sends in
 * batches (docs/protocol.md §2): the same frames, numbers and order as one
 * frame a message, fewer messages. A client that does not offer them never
 * gets one (the test client fails on a batch it did not ask for).
 */
describe('a replay to a client that reads batches', () => {
  it('sends the same frames in the same order as to one that does not, in one message', async () => {
    const room = sessionsRoom('batch-same')
    const batched = await opened('/sessions/batch-same', { batches: true })
    const single = await opened('/sessions/batch-same')
    await evictWithSockets(room, batched, single)
    for (let i = 1; i <= 20; i++) expect(await room.broadcast(`rpc:${String(i)}`)).toBe(0)

    const batchedBack = await batched.resume('/sessions/batch-same')
    const singleBack = await single.resume('/sessions/batch-same')
    expect([batchedBack.resumed, singleBack.resumed]).toEqual([true, true])
    const expected = Array.from({ length: 20 }, (_, i) => `rpc:${String(i + 1)}`)
    const fromBatches: string[] = []
    const fromSingles: string[] = []
    for (let i = 0; i < 20; i++) {
      const [a, b] = [await batchedBack.next(), await singleBack.next()]
      fromBatches.push(a.payload)
      fromSingles.push(b.payload)
      // A broadcast is logged once: it has the same number for both.
      expect(a.seq).toBe(b.seq)
    }
    expect(fromBatches).toEqual(expected)
    expect(fromSingles).toEqual(expected)
    expect(batchedBack.batchSizes).toEqual([20])
    expect(singleBack.batchSizes).toEqual([])
    // Then the greeting `open` sent, live, alone.
    expect(await batchedBack.nextPayload()).toBe(`open:${String(batched.id)}:true`)
    expect(batchedBack.batchSizes).toEqual([20])
    for (const client of [batchedBack, singleBack]) client.close(1000)
    await Promise.all([batchedBack.whenClosed(), singleBack.whenClosed()])
  })

  it('sends a binary frame alone, between the batches of the text frames around it, in order', async () => {
    const room = sessionsRoom('batch-binary')
    const reader = await opened('/sessions/batch-binary', { batches: true })
    const writer = await opened('/sessions/batch-binary')
    await reader.drop(room)
    for (const text of ['all:1', 'all:2', 'bin:3', 'all:4', 'all:5']) writer.send(text)
    await writer.sync()

    const back = await reader.resume('/sessions/batch-binary')
    expect(await back.payloads(6)).toEqual([
      'all:1',
      'all:2',
      'bin:3',
      'all:4',
      'all:5',
      `open:${String(reader.id)}:true`,
    ])
    expect(back.batchSizes).toEqual([2, 2])
    for (const client of [back, writer]) client.close(1000)
    await Promise.all([back.whenClosed(), writer.whenClosed()])
  })

  it('keeps each batch within BATCH_BYTES of frames', async () => {
    const room = sessionsRoom('batch-bytes')
    const reader = await opened('/sessions/batch-bytes', { batches: true })
    const writer = await opened('/sessions/batch-bytes')
    await reader.drop(room)
    // Three of these fit in a batch, four do not.
    const length = Math.floor(BATCH_BYTES / 3.2)
    for (let i = 0; i < 5; i++) writer.send(`big:${String(length)}`)
    await writer.sync()
    expect(await writer.payloads(5)).toHaveLength(5)

    const back = await reader.resume('/sessions/batch-bytes')
    const sizes = (await back.payloads(5)).map((payload) => payload.length)
    expect(sizes).toEqual([length, length, length, length, length])
    expect(back.batchSizes).toEqual([3, 2])
    for (const client of [back, writer]) client.close(1000)
    await Promise.all([back.whenClosed(), writer.whenClosed()])
  })

  it('sends a window at a time, each in one batch, also after the object hibernated between two windows', async () => {
    const path = '/paged-sessions/batch-windows'
    const room = pagedSessions.room<PagedSessionsObject>(env, 'batch-windows')
    const reader = await opened(path, { batches: true })
    const writer = await opened(path)
    await reader.drop(room)
    const count = 2 * PAGED_WINDOW + 1
    for (let i = 1; i <= count; i++) writer.send(`all:${String(i)}`)
    await writer.sync()

    const back = await reader.resume(path)
    expect(await back.payloads(PAGED_WINDOW)).toEqual(['all:1', 'all:2', 'all:3', 'all:4'])
    expect(back.batchSizes).toEqual([PAGED_WINDOW])
    await back.expectNothingWithin(100)
    // The socket stays; the object goes, and comes back for the ack knowing only what it stored.
    await evictDurableObject(room)
    back.ack()
    expect(await back.payloads(PAGED_WINDOW)).toEqual(['all:5', 'all:6', 'all:7', 'all:8'])
    expect(back.batchSizes).toEqual([PAGED_WINDOW, PAGED_WINDOW])
    back.ack()
    // What `open` sent on the resume waited behind the replay in the log, so it comes in its last batch.
    expect(await back.payloads(2)).toEqual(['all:9', `open:${String(reader.id)}:true`])
    expect(back.batchSizes).toEqual([PAGED_WINDOW, PAGED_WINDOW, 2])
    for (const client of [back, writer]) client.close(1000)
    await Promise.all([back.whenClosed(), writer.whenClosed()])
  })
})
