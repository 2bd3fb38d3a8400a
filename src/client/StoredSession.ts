import type { Frame } from '../shared/serializer.js'
import { isToken } from '../shared/sessionProtocol.js'
import type { Numbered, SessionState } from './Session.js'

/**
 * Where a session outlives its page: `sessionStorage` and `localStorage` fit
 * as they are, and so does any object with these three methods.
 */
export interface SessionStore {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** Everything a reloaded page needs to resume: the session, and the messages it had not sent yet. */
export interface SavedSession extends SessionState {
  waiting: Frame[]
}

/** A text frame is kept as it is; bytes as base64 under `b`. */
type StoredFrame = string | { b: string }

interface StoredPosition {
  v: 1
  token: string | null
  last: number
  next: number
}

interface StoredMessages {
  /** A request's entry has its mark third. */
  unacknowledged: ([number, StoredFrame] | [number, StoredFrame, string])[]
  waiting: StoredFrame[]
}

/**
 * Keeps a session in a store under two keys: its position changes with
 * every message received and is small, the messages change only when the
 * client sends or an ack arrives, so neither write copies the other.
 */
export class StoredSession {
  readonly #store: SessionStore
  readonly #position: string
  readonly #messages: string

  constructor(store: SessionStore, key: string) {
    this.#store = store
    this.#position = key
    this.#messages = `${key}:messages`
  }

  /** The session kept under the key, or undefined when there is none or it cannot be read. */
  load(): SavedSession | undefined {
    const position = parse(this.#store.getItem(this.#position))
    if (!isPosition(position)) return undefined
    const messages = parse(this.#store.getItem(this.#messages)) ?? { unacknowledged: [], waiting: [] }
    if (!isMessages(messages)) return undefined
    return {
      token: position.token,
      last: position.last,
      next: position.next,
      unacknowledged: messages.unacknowledged.map(([seq, frame, mark]) =>
        mark === undefined ? { seq, frame: fromStored(frame) } : { seq, frame: fromStored(frame), mark },
      ),
      waiting: messages.waiting.map(fromStored),
    }
  }

  savePosition({ token, last, next }: SessionState): void {
    const position: StoredPosition = { v: 1, token, last, next }
    this.#store.setItem(this.#position, JSON.stringify(position))
  }

  saveMessages(unacknowledged: readonly Numbered[], waiting: readonly Frame[]): void {
    const messages: StoredMessages = {
      unacknowledged: unacknowledged.map(({ seq, frame, mark }) =>
        mark === undefined ? [seq, toStored(frame)] : [seq, toStored(frame), mark],
      ),
      waiting: waiting.map(toStored),
    }
    this.#store.setItem(this.#messages, JSON.stringify(messages))
  }

  remove(): void {
    this.#store.removeItem(this.#position)
    this.#store.removeItem(this.#messages)
  }
}

function parse(text: string | null): unknown {
  if (text === null) return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isPosition(value: unknown): value is StoredPosition {
  if (typeof value !== 'object' || value === null) return false
  const { v, token, last, next } = value as Record<string, unknown>
  return v === 1 && (token === null || isToken(token)) && isCount(last) && isCount(next) && next >= 1
}

function isStoredFrame(value: unknown): value is StoredFrame {
  return (
    typeof value === 'string' ||
    (typeof value === 'object' && value !== null && typeof (value as { b?: unknown }).b === 'string')
  )
}

function isMessages(value: unknown): value is StoredMessages {
  if (typeof value !== 'object' || value === null) return false
  const { unacknowledged, waiting } = value as Record<string, unknown>
  return (
    Array.isArray(unacknowledged) &&
    unacknowledged.every(
      (entry: unknown) =>
        Array.isArray(entry) &&
        isCount(entry[0]) &&
        isStoredFrame(entry[1]) &&
        (entry[2] === undefined || entry[2] === '?'),
    ) &&
    Array.isArray(waiting) &&
    waiting.every(isStoredFrame)
  )
}

/** btoa takes a string of byte-sized characters; built in slices, since spreading a big array overflows the stack. */
function toStored(frame: Frame): StoredFrame {
  if (typeof frame === 'string') return frame
  const bytes = ArrayBuffer.isView(frame)
    ? new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength)
    : new Uint8Array(frame)
  let binary = ''
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000))
  }
  return { b: btoa(binary) }
}

function fromStored(frame: StoredFrame): Frame {
  if (typeof frame === 'string') return frame
  const binary = atob(frame.b)
  const bytes = new Uint8Array(binary.length)
  for (let index = 0; index < binary.length; index += 1) bytes[index] = binary.charCodeAt(index)
  return bytes.buffer
}
