import { DurableWebSocketError } from '../core/errors.js'
import { describe } from '../shared/describe.js'
import {
  SESSION_PROTOCOL,
  isSessionProtocolName,
  readServerFrame,
  resumeEntry,
  type ResumePoint,
  type Welcome,
} from '../shared/sessionProtocol.js'
import { HandshakeError } from './HandshakeError.js'
import type { Fetchable, OpenSocketOptions } from './openSocket.js'
import { TestSession, type SessionLink } from './TestSession.js'
import { TestSocket } from './TestSocket.js'
import { upgrade, upgradeRequest, type UpgradeRequest } from './upgrade.js'

export interface OpenSessionOptions<Message> extends OpenSocketOptions<Message> {
  /**
   * Subprotocols of your application (an auth marker and its token, say),
   * offered after the session's own on every socket of the session.
   */
  protocols?: readonly string[] | undefined
}

/**
 * Opens a durable session to your worker, as `durable-websocket/client`
 * would: the upgrade goes through its `fetch` offering the session
 * subprotocol, and resolves once the server's welcome has come. Rejects with
 * a {@link HandshakeError} when the answer is not a 101, or a 101 that does
 * not name the session subprotocol. Runs inside workerd.
 */
export function openSession(
  worker: Fetchable,
  path: string,
  options: OpenSessionOptions<string> & { serializer: false },
): Promise<TestSession<string>>
export function openSession<Message = unknown>(
  worker: Fetchable,
  path: string,
  options?: OpenSessionOptions<Message>,
): Promise<TestSession<Message>>
export async function openSession<Message>(
  worker: Fetchable,
  path: string,
  options: OpenSessionOptions<Message> = {},
): Promise<TestSession<Message>> {
  const { protocols = [], ...socketOptions } = options
  const request = upgradeRequest('openSession', path, socketOptions)
  checkProtocols(protocols, request.headers)
  const link: SessionLink<Message> = {
    serializer: request.serializer,
    timeout: request.timeout,
    connect: (resume) => connect(worker, request, protocols, resume),
  }
  const { socket, welcome } = await link.connect(undefined)
  return new TestSession(link, socket, welcome)
}

async function connect(
  worker: Fetchable,
  request: UpgradeRequest<unknown>,
  protocols: readonly string[],
  resume: ResumePoint | undefined,
): Promise<{ socket: TestSocket<string>; welcome: Welcome }> {
  const offer = resume === undefined ? [SESSION_PROTOCOL] : [SESSION_PROTOCOL, resumeEntry(resume)]
  const { response, webSocket } = await upgrade(worker, request, [...offer, ...protocols])
  const socket = new TestSocket<string>(webSocket, undefined, request.timeout)
  const named = response.headers.get('Sec-WebSocket-Protocol')
  if (named !== SESSION_PROTOCOL) {
    await socket.close()
    throw new HandshakeError(
      request.url,
      response,
      '',
      `the 101 from ${request.url} named ${named === null ? 'no subprotocol' : JSON.stringify(named)}, not ${SESSION_PROTOCOL}: nothing there speaks sessions. Point openSession() at a durable-websocket mount, or test a plain WebSocket endpoint with openSocket().`,
    )
  }
  let first: string | ArrayBuffer
  try {
    first = await socket.nextFrame()
  } catch (cause) {
    throw new Error(`the session socket from ${request.url} sent no welcome`, { cause })
  }
  const frame = readServerFrame(first)
  if (frame.kind !== 'welcome' || (resume === undefined && frame.welcome.resumed)) {
    await socket.close()
    throw new Error(
      `the server broke the session protocol: its first frame from ${request.url} is ${frame.kind === 'welcome' ? 'a welcome resuming a session nobody asked for' : `not a welcome (${frame.kind === 'invalid' ? frame.problem : frame.kind})`}`,
    )
  }
  return { socket, welcome: frame.welcome }
}

function checkProtocols(protocols: unknown, headers: Headers): void {
  if (!Array.isArray(protocols) || !protocols.every((name) => typeof name === 'string')) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_OPTIONS',
      `openSession(): options.protocols must be an array of subprotocol names, got ${describe(protocols)}.`,
    )
  }
  const own = protocols.find((name) => isSessionProtocolName(name))
  if (own !== undefined) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_OPTIONS',
      `openSession(): options.protocols names ${JSON.stringify(own)}, one of the session protocol's own; leave those out, openSession() offers them itself (and resume() the resume entry).`,
    )
  }
  if (headers.has('Sec-WebSocket-Protocol')) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_OPTIONS',
      'openSession(): options.headers sets Sec-WebSocket-Protocol, which openSession() writes itself; pass your subprotocols as options.protocols instead.',
    )
  }
}
