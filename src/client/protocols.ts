import { describe } from '../shared/describe.js'
import { ClientError } from './ClientError.js'

/** One subprotocol name, or several, in the order the server should consider them. */
export type Protocols = string | readonly string[]

/**
 * What the client offers in Sec-WebSocket-Protocol: always the same names,
 * or a function called before every attempt, so each reconnect can carry a
 * fresh token (`async () => ['dws.auth', await getToken()]`).
 */
export type ProtocolsOption = Protocols | (() => Protocols | PromiseLike<Protocols>)

/** A fixed offer, checked once, or the function to call before each attempt. */
export type ResolvedProtocols = readonly string[] | (() => Protocols | PromiseLike<Protocols>)

/**
 * RFC 6455 §4.1: a subprotocol name is an RFC 2616 token, visible ASCII
 * without separators. The WebSocket constructor throws a bare SyntaxError on
 * anything else, and on a name offered twice.
 */
const NOT_IN_A_NAME = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/
const RULE = "a subprotocol name is letters, digits and !#$%&'*+-.^_`|~ only"

function invalid(message: string): ClientError {
  return new ClientError('ERR_DWS_INVALID_OPTIONS', message)
}

// No message here repeats a name: one of them may be a token, and errors get logged.
function checkName(name: unknown, label: string): string {
  if (typeof name !== 'string') throw invalid(`${label} must be a string, got ${describe(name)}.`)
  if (name === '') throw invalid(`${label} is empty; ${RULE}.`)
  const bad = NOT_IN_A_NAME.exec(name)?.[0]
  if (bad !== undefined) {
    throw invalid(
      `${label} holds ${JSON.stringify(bad)}; ${RULE} (for a base64 token, use base64url without padding).`,
    )
  }
  return name
}

/** `where` is `options.protocols` for the option, `options.protocols()` for what its function returned. */
function protocolList(value: unknown, where: string): string[] {
  if (typeof value === 'string') return [checkName(value, where)]
  if (!Array.isArray(value)) {
    const expected = where.endsWith('()')
      ? 'must return (or resolve to) a subprotocol name or an array of them'
      : 'must be a subprotocol name, an array of them, or a function that returns either'
    throw invalid(`${where} ${expected}, got ${describe(value)}.`)
  }
  const names = value.map((name: unknown, index) => checkName(name, `${where}[${String(index)}]`))
  for (const [index, name] of names.entries()) {
    const first = names.indexOf(name)
    if (first !== index) {
      throw invalid(`${where}[${String(index)}] repeats ${where}[${String(first)}]; offer each name once.`)
    }
  }
  return names
}

/** Checks the option when the client is made; a function's offers are checked on each call. */
export function resolveProtocols(value: unknown): ResolvedProtocols {
  if (value === undefined) return []
  if (typeof value === 'function') return value as () => Protocols | PromiseLike<Protocols>
  return protocolList(value, 'options.protocols')
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

/**
 * The names to offer on one attempt, at once when they are known. A function
 * that throws or rejects fails this attempt alone (`ERR_DWS_SOCKET_ERROR`,
 * retried like a refused handshake, since a token service can be down for a
 * while); one that returns a bad offer gets `ERR_DWS_INVALID_OPTIONS`.
 */
export function nextOffer(protocols: ResolvedProtocols, url: string): readonly string[] | Promise<string[]> {
  if (typeof protocols !== 'function') return protocols
  const failed = (cause: unknown): ClientError =>
    new ClientError(
      'ERR_DWS_SOCKET_ERROR',
      `options.protocols() failed, so no WebSocket to ${url} was opened.`,
      { cause },
    )
  const where = 'options.protocols()'
  let offer: unknown
  try {
    offer = protocols()
  } catch (cause) {
    throw failed(cause)
  }
  if (!isThenable(offer)) return protocolList(offer, where)
  return Promise.resolve(offer).then(
    (value) => protocolList(value, where),
    (cause: unknown) => {
      throw failed(cause)
    },
  )
}
