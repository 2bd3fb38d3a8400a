import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { pending, type PendingObject } from './fixture/endpoints/pending.js'
import { connect, eventually, join, leave, sleep, type Client } from './client.js'

const COUNT = 25

function sendAll(client: Client, tag: string): void {
  for (let n = 1; n <= COUNT; n++) client.send(`${tag}${String(n)}`)
}

async function receiveAll(client: Client): Promise<string[]> {
  const replies: string[] = []
  for (let n = 1; n <= COUNT; n++) replies.push(await client.nextText())
  return replies
}

/** start 1, end 1, start 2, end 2, …: each handler call finished before the next began. */
function serialTrace(tag: string): string[] {
  return Array.from({ length: COUNT }, (_, i) => [
    `start ${tag}${String(i + 1)}`,
    `end ${tag}${String(i + 1)}`,
  ]).flat()
}

describe('message(conn, message) with an async handler', () => {
  it('gets the messages of a connection in order, each only after the previous call has finished', async () => {
    const client = await connect('/ordering')
    sendAll(client, '')
    expect(await receiveAll(client)).toEqual(Array.from({ length: COUNT }, (_, i) => `done ${String(i + 1)}`))
    expect(JSON.parse(await client.ask('trace'))).toEqual(serialTrace(''))
    await leave(client)
  })

  it('keeps that order for each of several connections sending at once', async () => {
    const a = await connect('/ordering')
    const b = await connect('/ordering')
    sendAll(a, 'a')
    sendAll(b, 'b')
    const [fromA, fromB] = await Promise.all([receiveAll(a), receiveAll(b)])
    expect(fromA).toEqual(Array.from({ length: COUNT }, (_, i) => `done a${String(i + 1)}`))
    expect(fromB).toEqual(Array.from({ length: COUNT }, (_, i) => `done b${String(i + 1)}`))
    expect(JSON.parse(await a.ask('trace'))).toEqual(serialTrace('a'))
    expect(JSON.parse(await b.ask('trace'))).toEqual(serialTrace('b'))
    await leave(a, b)
  })

  it('keeps that order for messages that arrive one by one, while an earlier call is pending and after it settled', async () => {
    const room = pending.room<PendingObject>(env, 'spaced')
    const { client, id } = await join('/pending/spaced')
    expect(await client.ask('hold:a')).toBe('started a')
    client.send('hold:b')
    // Time for b to reach the object and wait behind a, which is still pending.
    await sleep(20)
    await room.release('a')
    // b runs now, a has settled; c arrives while b is pending, d after b settled.
    expect(await client.nextText()).toBe('started b')
    client.send('c')
    await sleep(20)
    await room.release('b')
    expect(await client.nextText()).toBe('echo:c')
    expect(await client.ask('d')).toBe('echo:d')
    const log = await eventually(
      () => room.log(),
      (entries) => entries.some((entry) => entry.message === 'd'),
    )
    expect(
      log
        .filter((entry) => entry.id === id)
        .map((entry) => `${String(entry.event)} ${String(entry.message)}`),
    ).toEqual(['start hold:a', 'end hold:a', 'start hold:b', 'end hold:b', 'message c', 'message d'])
    await leave(client)
  })

  it('keeps that order for messages sent a few milliseconds apart', async () => {
    const client = await connect('/ordering')
    for (let n = 1; n <= COUNT; n++) {
      client.send(`spaced${String(n)}`)
      await sleep(2)
    }
    expect(await receiveAll(client)).toEqual(
      Array.from({ length: COUNT }, (_, i) => `done spaced${String(i + 1)}`),
    )
    expect(JSON.parse(await client.ask('trace'))).toEqual(serialTrace('spaced'))
    await leave(client)
  })
})
