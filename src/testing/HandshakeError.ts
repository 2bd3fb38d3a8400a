/**
 * The worker answered an upgrade with something other than a 101, e.g. the
 * 401 of an auth middleware or the 403 of `allowOrigins`; or, for
 * `openSession`, with a 101 that does not name the session subprotocol.
 * Assert on `status` and `body` rather than on the message text.
 */
export class HandshakeError extends Error {
  readonly status: number
  readonly body: string
  readonly headers: Headers

  /** `problem` replaces the message, for a 101 that is still not what the helper needs. */
  constructor(url: string, response: Response, body: string, problem?: string) {
    super(
      problem ??
        `expected 101 Switching Protocols from ${url}, got ${String(response.status)}${body === '' ? '' : `: ${body.trim()}`}`,
    )
    this.name = 'HandshakeError'
    this.status = response.status
    this.body = body
    this.headers = response.headers
  }
}
