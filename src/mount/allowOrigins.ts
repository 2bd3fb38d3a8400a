import { DurableWebSocketError } from '../core/errors.js'
import { describe } from '../shared/describe.js'
import type { MiddlewareHandler } from './middleware.js'

export interface AllowOriginsOptions {
  /** Exact origins (`https://app.example.com`) or patterns tested against the Origin header. */
  origins: readonly (string | RegExp)[]
  /**
   * Let through handshakes with no Origin header. Browsers always send one,
   * so this only admits non-browser clients, which could forge any Origin anyway.
   * @default true
   */
  allowMissing?: boolean
}

function invalid(message: string): DurableWebSocketError {
  return new DurableWebSocketError('ERR_DWS_INVALID_OPTIONS', `allowOrigins: ${message}`)
}

function normalizeOrigin(origin: string): string {
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    throw invalid(
      `"${origin}" is not an origin; write it as scheme://host[:port], e.g. "https://example.com".`,
    )
  }
  if (url.origin === 'null' || url.origin !== origin.replace(/\/$/, '').toLowerCase()) {
    throw invalid(`"${origin}" is not an origin; drop any path, query or credentials, e.g. "${url.origin}".`)
  }
  return url.origin
}

/**
 * Refuses handshakes from pages on other sites (cross-site WebSocket
 * hijacking): browsers attach cookies to a WebSocket handshake from any page,
 * and the Origin header is the only thing that tells the pages apart.
 */
export function allowOrigins(options: AllowOriginsOptions): MiddlewareHandler<unknown, object> {
  if (typeof options !== 'object' || (options as unknown) === null)
    throw invalid(`options must be an object, got ${describe(options)}.`)
  const { origins, allowMissing = true } = options
  if (!Array.isArray(origins) || origins.length === 0) {
    throw invalid('options.origins must be a non-empty array of origins or RegExps.')
  }
  if (typeof allowMissing !== 'boolean')
    throw invalid(`options.allowMissing must be a boolean, got ${describe(allowMissing)}.`)
  const exact = new Set<string>()
  const patterns: RegExp[] = []
  for (const origin of origins as readonly unknown[]) {
    if (origin instanceof RegExp) {
      // A /g or /y pattern keeps lastIndex between calls and would answer differently each time.
      if (origin.global || origin.sticky) throw invalid(`drop the g and y flags from ${String(origin)}.`)
      patterns.push(origin)
    } else if (typeof origin === 'string') exact.add(normalizeOrigin(origin))
    else throw invalid(`each origin must be a string or a RegExp, got ${describe(origin)}.`)
  }
  return (request) => {
    const origin = request.headers.get('Origin')
    if (origin === null) return allowMissing ? undefined : forbidden()
    const normalized = origin.toLowerCase()
    if (exact.has(normalized) || patterns.some((pattern) => pattern.test(origin))) return undefined
    return forbidden()
  }
}

function forbidden(): Response {
  return new Response('Forbidden: this origin may not open a WebSocket here.\n', { status: 403 })
}
