import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { encodeFailure, markText, numbered, readFailure } from '../../src/shared/dataFrames.js'
import { encodePresenceDiff, encodePresenceList } from '../../src/shared/presenceFrames.js'
import {
  BATCHES_OFFER,
  SESSION_PROTOCOL,
  SessionCloseCode,
  encodeBatch,
  encodeClientAck,
  encodeServerAck,
  encodeWelcome,
  endsSession,
  isBatch,
  readBatch,
  readClientFrame,
  readServerFrame,
  readSessionOffer,
  resumeEntry,
  retryHint,
  retryReason,
  serverCloseSuspends,
} from '../../src/shared/sessionProtocol.js'

/**
 * docs/protocol.md's own examples, read from the page as it is: a frame the
 * page shows must read back as what the page says it is, and the encoders
 * must write it to the letter, so the page and the code cannot drift apart.
 */
const PAGE = readFileSync(resolve(import.meta.dirname, '../../docs/protocol.md'), 'utf8')

/** The worked example's frames (§9): `→` client to server, `←` server to client, annotations cut off. */
function workedExample(): { from: 'client' | 'server'; frame: string }[] {
  const section = PAGE.slice(PAGE.indexOf('## 9. A worked example'))
  const frames: { from: 'client' | 'server'; frame: string }[] = []
  for (const [, arrow = '', rest = ''] of section.matchAll(/^([→←]) (.+)$/gm)) {
    const frame = rest.replace(/ {2,}\(.*$/, '').trimEnd()
    if (frame.startsWith('GET ') || frame.startsWith('101 ')) continue
    frames.push({ from: arrow === '→' ? 'client' : 'server', frame })
  }
  return frames
}

/** The bodies of the page's fenced blocks of one language. */
function blocks(language: string): string[] {
  return [...PAGE.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map(
    ([, body = '']) => body,
  )
}

describe("docs/protocol.md's examples", () => {
  it('reads every frame of the worked example as a valid frame of its sender, and writes each control frame back to the letter', () => {
    const frames = workedExample()
    expect(frames.length).toBeGreaterThan(12)
    for (const { from, frame } of frames) {
      const read = from === 'client' ? readClientFrame(frame) : readServerFrame(frame)
      expect(read.kind, frame).not.toBe('invalid')
      if (read.kind === 'welcome') expect(encodeWelcome(read.welcome)).toBe(frame)
      if (read.kind === 'ack' && 'handled' in read) expect(encodeServerAck(read.handled)).toBe(frame)
      if (read.kind === 'ack' && 'last' in read && read.last !== undefined)
        expect(encodeClientAck(read.last)).toBe(frame)
      if (read.kind === 'data') expect(numbered(read.seq, read.payload, markText(read.mark))).toBe(frame)
    }
  })

  it('reads the data frames of the worked example with their numbers and payloads', () => {
    const data = workedExample()
      .map(({ from, frame }) => (from === 'client' ? readClientFrame(frame) : readServerFrame(frame)))
      .filter((read) => read.kind === 'data')
    expect(data[0]).toEqual({ kind: 'data', seq: 1, payload: '{"say":"hi"}' })
    expect(data.map((read) => read.seq)).toContain(245)
  })

  it('reads the welcome of §4 and the acks of §5', () => {
    const json = blocks('json').map((body) => JSON.stringify(JSON.parse(body)))
    const welcome = json.find((text) => text.includes('"welcome"'))
    expect(welcome).toBeDefined()
    const read = readServerFrame(welcome ?? '')
    expect(read).toMatchObject({
      kind: 'welcome',
      welcome: { id: 12, resumed: true, handled: 36, ackEvery: 125 },
    })
    if (read.kind === 'welcome') expect(encodeWelcome(read.welcome)).toBe(welcome)
    expect(json.map((text) => readClientFrame(text))).toContainEqual({ kind: 'ack', last: 4212 })
    expect(json.map((text) => readServerFrame(text))).toContainEqual({ kind: 'ack', handled: 36 })
  })

  it('reads the offers of §1 and §9, and writes their resume entries back', () => {
    const offers = [
      ...PAGE.matchAll(/Sec-WebSocket-Protocol: (dws\.session\.v1, dws\.resume\.[^\s,]+(?:, [^\s,]+)*)/g),
    ]
    expect(offers.length).toBeGreaterThanOrEqual(2)
    for (const [, header = ''] of offers) {
      const entries = header.split(', ')
      const offer = readSessionOffer(entries)
      expect(offer.wanted).toBe(true)
      expect(offer.resume, header).toBeDefined()
      if (offer.resume !== undefined) expect(entries).toContain(resumeEntry(offer.resume))
      expect(offer.rest).toEqual(entries.slice(2))
    }
  })

  it('reads the presence frames of §11, and writes each back to the letter', () => {
    const frames = blocks('json').filter((body) => body.includes('"presence"'))
    expect(frames).toHaveLength(2)
    // As on the wire: the page shows them formatted.
    const [list, diff] = frames.map((body) => JSON.stringify(JSON.parse(body)))
    const readList = readServerFrame(list ?? '')
    expect(readList).toMatchObject({
      kind: 'presence',
      presence: {
        kind: 'list',
        members: [{ key: 'u-17', meta: { name: 'Bo' }, connections: 2 }, { key: 'u-42' }],
      },
    })
    if (readList.kind === 'presence' && readList.presence.kind === 'list')
      expect(encodePresenceList(readList.presence.members)).toBe(list)
    const readDiff = readServerFrame(diff ?? '')
    expect(readDiff).toMatchObject({
      kind: 'presence',
      presence: {
        kind: 'diff',
        join: [{ key: 'u-58' }],
        update: [{ key: 'u-17', connections: 1 }],
        leave: ['u-42'],
      },
    })
    if (readDiff.kind === 'presence' && readDiff.presence.kind === 'diff') {
      const { join, update, leave } = readDiff.presence
      expect(encodePresenceDiff(join, update, leave)).toBe(diff)
    }
  })

  it("reads §2's batch as the frames of §9's replay, and writes it back to the letter", () => {
    const [body] = blocks('batch')
    const batch = body?.trim() ?? ''
    expect(isBatch(batch)).toBe(true)
    const frames = readBatch(batch)
    const replay = workedExample()
      .filter(({ frame }) => /^24[15] /.test(frame))
      .map(({ frame }) => frame)
    expect(replay).toHaveLength(2)
    expect(frames).toEqual(replay)
    expect(encodeBatch(replay)).toBe(batch)
  })

  it('names the codes of §7 as the code does', () => {
    for (const code of Object.values(SessionCloseCode))
      expect(PAGE).toMatch(new RegExp(`^\\| ${String(code)} `, 'm'))
    expect(PAGE).toContain(SESSION_PROTOCOL)
  })
})

describe('the bench loads the protocol from src as it is', () => {
  it('runs sessionProtocol.ts and the files it imports under Node with bench/lib/sourceImports.ts', () => {
    // The bench's session client imports src under Node's type stripping, which leaves `./x.js` as it is.
    const script =
      "const p = await import('./src/shared/sessionProtocol.ts'); console.log(JSON.stringify(p.readServerFrame('7=3 hi')))"
    const printed = execFileSync(
      process.execPath,
      ['--import', './bench/lib/sourceImports.ts', '--input-type=module', '-e', script],
      { cwd: resolve(import.meta.dirname, '../..'), encoding: 'utf8' },
    )
    expect(JSON.parse(printed)).toEqual({
      kind: 'data',
      seq: 7,
      mark: { type: 'reply', to: 3 },
      payload: 'hi',
    })
  })
})

describe('encodeBatch(frames), readBatch(raw) and the offer of batches', () => {
  it('reads back the frames it wrote, payloads with quotes, spaces and non-ASCII text included', () => {
    const frames = ['7 {"say":"a \\"quoted\\" word"}', '9 plain text', '12=3 ünïcødé ✓']
    const batch = encodeBatch(frames)
    expect(isBatch(batch)).toBe(true)
    expect(readBatch(batch)).toEqual(frames)
    expect(frames.map((frame) => readServerFrame(frame).kind)).toEqual(['data', 'data', 'data'])
  })

  it.each([
    ['text that is not JSON', '[1 x'],
    ['an empty array', '[]'],
    ['one frame', '["1 x"]'],
    ['a number', '[1,2]'],
    ['a control frame', '["1 x","{\\"t\\":\\"ack\\",\\"handled\\":0}"]'],
    ['a batch in a batch', '["1 x","[\\"2 y\\",\\"3 z\\"]"]'],
    ['a frame without its number', '["1 x","hi"]'],
  ])('refuses %s', (_what, raw) => {
    expect(readBatch(raw)).toMatchObject({ kind: 'invalid' })
  })

  it('is not a batch unless it is text that starts with [', () => {
    expect(isBatch('1 [x]')).toBe(false)
    expect(isBatch('{"t":"ack","handled":1}')).toBe(false)
    expect(isBatch(new TextEncoder().encode('["1 x","2 y"]').buffer)).toBe(false)
  })

  it('reads the offer of batches only beside dws.session.v1, and keeps it from the app', () => {
    expect(readSessionOffer([SESSION_PROTOCOL, BATCHES_OFFER, 'chat'])).toMatchObject({
      wanted: true,
      batches: true,
      rest: ['chat'],
    })
    expect(readSessionOffer([SESSION_PROTOCOL, 'chat'])).toMatchObject({ batches: false })
    expect(readSessionOffer([BATCHES_OFFER, 'chat'])).toMatchObject({
      wanted: false,
      batches: false,
      rest: ['chat'],
    })
  })
})

describe('readClientFrame(raw)', () => {
  it.each([
    ['a control frame other than ack', '{"t":"welcome"}'],
    ['an ack whose last is a string', '{"t":"ack","last":"4"}'],
    ['text that is not JSON after a brace', '{nope'],
    ['a data frame numbered 0', '0 hi'],
    ['a data frame without a space', '12'],
    ['a number of 17 digits', `${'1'.repeat(17)} x`],
    ['a sign', '-1 x'],
  ])('refuses %s', (_what, frame) => {
    expect(readClientFrame(frame).kind).toBe('invalid')
  })

  it('reads a binary data frame, its number in ASCII before the first space', () => {
    const frame = numbered(31, new Uint8Array([0x89, 0x50]))
    const read = readClientFrame(frame as ArrayBuffer)
    expect(read).toMatchObject({ kind: 'data', seq: 31 })
    if (read.kind === 'data') expect([...new Uint8Array(read.payload as ArrayBuffer)]).toEqual([0x89, 0x50])
  })

  it('takes an ack without last, and one whose last is past 2^53 as naming none', () => {
    expect(readClientFrame('{"t":"ack"}')).toEqual({ kind: 'ack', last: undefined })
    expect(readClientFrame('{"t":"ack","last":1e300}')).toEqual({ kind: 'ack', last: undefined })
  })
})

describe('requests and replies (§10)', () => {
  it("reads §10's frames with their marks: a client's request, the server's reply and failure", () => {
    const frames = workedExample().filter(({ frame }) => /^\d+[?=!]/.test(frame))
    expect(
      frames.map(({ from, frame }) => (from === 'client' ? readClientFrame(frame) : readServerFrame(frame))),
    ).toEqual([
      { kind: 'data', seq: 18, payload: '{"get":"history"}', mark: { type: 'request' } },
      { kind: 'data', seq: 251, payload: '{"messages":[]}', mark: { type: 'reply', to: 18 } },
      { kind: 'data', seq: 19, payload: '{"delete":"m-9"}', mark: { type: 'request' } },
      {
        kind: 'data',
        seq: 252,
        payload: '{"code":"not-allowed","message":"only its author may delete it"}',
        mark: { type: 'failure', to: 19 },
      },
    ])
    expect(readFailure('{"code":"not-allowed","message":"only its author may delete it"}')).toEqual({
      code: 'not-allowed',
      message: 'only its author may delete it',
    })
    expect(encodeFailure({ code: 'not-allowed', message: 'only its author may delete it' })).toBe(
      '{"code":"not-allowed","message":"only its author may delete it"}',
    )
  })

  it.each([
    ['a reply from a client', '5=3 x', 'client'],
    ['a failure from a client', '5!3 x', 'client'],
    ['a request from the server', '5? x', 'server'],
    ['a reply to request 0', '5=0 x', 'server'],
    ['a mark without its number', '5= x', 'server'],
    ['two marks', '5?? x', 'client'],
    ['a mark before the number', '?5 x', 'client'],
  ] as const)('refuses %s', (_what, frame, from) => {
    expect((from === 'client' ? readClientFrame(frame) : readServerFrame(frame)).kind).toBe('invalid')
  })

  it('marks a binary frame the same way, within its first 34 bytes', () => {
    const frame = numbered(12_345_678, new Uint8Array([0xff]), markText({ type: 'reply', to: 87_654_321 }))
    const read = readServerFrame(frame as ArrayBuffer)
    expect(read).toMatchObject({ kind: 'data', seq: 12_345_678, mark: { type: 'reply', to: 87_654_321 } })
  })

  it('reads a failure strictly: a JSON object with a non-empty code and a message', () => {
    expect(readFailure('{"code":"","message":"x"}')).toBeUndefined()
    expect(readFailure('{"code":"failed"}')).toBeUndefined()
    expect(readFailure('nope')).toBeUndefined()
    expect(readFailure(new ArrayBuffer(2))).toBeUndefined()
  })
})

describe('readServerFrame(raw)', () => {
  it("reads a server ack's position advance, and writes it back", () => {
    const frame = encodeServerAck(3, 4212)
    expect(frame).toBe('{"t":"ack","handled":3,"last":4212}')
    expect(readServerFrame(frame)).toEqual({ kind: 'ack', handled: 3, last: 4212 })
    expect(readServerFrame('{"t":"ack","handled":3,"last":-1}').kind).toBe('invalid')
  })

  it('skips a control frame of a later version, and fields it does not know', () => {
    expect(readServerFrame('{"t":"typing","who":[]}')).toEqual({ kind: 'other' })
    expect(readServerFrame('{"t":"ack","handled":3,"later":true}')).toEqual({ kind: 'ack', handled: 3 })
  })

  it.each([
    ['a welcome without window', { window: undefined }],
    ['a welcome whose token has a dot', { token: 'a.bcdefghijklmnopqrstuvwxyz' }],
    ['a welcome whose token is too short to be one', { token: 'abc' }],
    ['a welcome of another version', { v: 2 }],
    ['a welcome whose maxMessageBytes is 0', { maxMessageBytes: 0 }],
  ])('refuses %s', (_what, fields) => {
    const welcome = {
      t: 'welcome',
      v: 1,
      id: 1,
      token: 'A'.repeat(43),
      resumed: false,
      handled: 0,
      last: 0,
      window: 0,
    }
    expect(readServerFrame(JSON.stringify({ ...welcome, ...fields })).kind).toBe('invalid')
  })
})

describe('encodePresenceList(members), encodePresenceDiff(join, update, leave) and their reader', () => {
  const bo = { key: 'u-17', meta: { name: 'Bo' }, connections: 1 }

  it('leaves out the empty lists of a diff, and reads them back as empty', () => {
    const frame = encodePresenceDiff([], [], ['u-17'])
    expect(frame).toBe('{"t":"presence","leave":["u-17"]}')
    expect(readServerFrame(frame)).toEqual({
      kind: 'presence',
      presence: { kind: 'diff', join: [], update: [], leave: ['u-17'] },
    })
  })

  it('writes an empty room as an empty list', () => {
    expect(encodePresenceList([])).toBe('{"t":"presence","members":[]}')
    expect(readServerFrame('{"t":"presence","members":[]}')).toEqual({
      kind: 'presence',
      presence: { kind: 'list', members: [] },
    })
  })

  it('writes the fields of a member in one order, whatever order it was given in', () => {
    expect(encodePresenceList([{ connections: 1, meta: { name: 'Bo' }, key: 'u-17' }])).toBe(
      '{"t":"presence","members":[{"key":"u-17","meta":{"name":"Bo"},"connections":1}]}',
    )
  })

  it.each([
    ['members and changes at once', { members: [bo], leave: ['u-1'] }],
    ['members that is not a list', { members: {} }],
    ['a member without a key', { members: [{ meta: {}, connections: 1 }] }],
    ['a member with an empty key', { join: [{ ...bo, key: '' }] }],
    ['a member whose meta is a list', { update: [{ ...bo, meta: [] }] }],
    ['a member whose meta is null', { join: [{ ...bo, meta: null }] }],
    ['a member with no connections', { join: [{ ...bo, connections: 0 }] }],
    ['a member with half a connection', { join: [{ ...bo, connections: 1.5 }] }],
    ['a leave that names a number', { leave: [17] }],
  ])('refuses a presence frame with %s', (_what, fields) => {
    expect(readServerFrame(JSON.stringify({ t: 'presence', ...fields })).kind).toBe('invalid')
  })
})

describe('retryReason(ms) and retryHint(reason)', () => {
  it('writes a wait and reads it back, and reads nothing from any other reason', () => {
    expect(retryReason(5000)).toBe('retry after 5000 ms')
    expect(retryHint(retryReason(5000))).toBe(5000)
    expect(retryHint('Too many queued messages')).toBeUndefined()
    expect(retryHint('retry after soon ms')).toBeUndefined()
  })
})

describe('endsSession(code) and serverCloseSuspends(code)', () => {
  it('ends a session on the client’s 1000 or a close without a code, and on nothing else the client sends', () => {
    expect([1000, 1005].every(endsSession)).toBe(true)
    expect([1001, 1006, 1011, 3000, 4000, 4999].some(endsSession)).toBe(false)
  })

  it('suspends a session on the server’s 1011, 1001 and 1013, and ends it on every other code the server sends', () => {
    expect([1011, 1001, 1013].every(serverCloseSuspends)).toBe(true)
    expect([1000, 1002, 1007, 1008, 1009, 3901, 3903, 4000].some(serverCloseSuspends)).toBe(false)
  })
})
