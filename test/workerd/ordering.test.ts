import { describe, expect, it } from 'vitest'
import { connect, leave, type Client } from './client.js'

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
})
