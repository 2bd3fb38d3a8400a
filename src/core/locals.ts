import type { Locals } from './events.js'

/**
 * Middleware runs in the Worker and `open` in the object, so locals travel
 * on the forwarded upgrade request. The Worker always deletes a copy the
 * client sent, so a client can never forge them.
 */
export const LOCALS_HEADER = 'x-durable-websocket-locals'

export function readLocals(request: Request): Locals {
  const header = request.headers.get(LOCALS_HEADER)
  return header === null ? {} : (JSON.parse(header) as Locals)
}

export function hasLocals(locals: object): boolean {
  for (const _key in locals) return true
  return false
}
