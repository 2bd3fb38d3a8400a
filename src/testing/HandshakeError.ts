/**
 * The worker answered an upgrade with something other than a 101, e.g. the
 * 401 of an auth middleware or the 403 of `allowOrigins`. Assert on `status`
 * and `body` rather than on the message text.
 */
export class HandshakeError extends Error {
  readonly status: number
  readonly body: string
  readonly headers: Headers

  constructor(url: string, response: Response, body: string) {
    super(
      `expected 101 Switching Protocols from ${url}, got ${String(response.status)}${body === '' ? '' : `: ${body.trim()}`}`,
    )
    this.name = 'HandshakeError'
    this.status = response.status
    this.body = body
    this.headers = response.headers
  }
}
