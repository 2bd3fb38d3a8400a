import type { Locals } from './events.js'

/**
 * Middleware runs in the Worker and `open` in the object. The locals
 * themselves go to the object over RPC, which no client can reach; the
 * forwarded upgrade carries only the one-time ticket the object answered
 * with. So a route that forwards a client's own request to the object
 * cannot forge them: whatever the client put in this header names no ticket.
 */
export const LOCALS_HEADER = 'x-durable-websocket-locals'

/** Long enough for the upgrade that follows the RPC call, which the Worker sends at once. */
const TICKET_LIFETIME_MS = 60_000

/** What the Worker side calls on the object's stub; WebSocketObject implements it. */
export interface LocalsDesk {
  issueLocalsTicket(locals: Locals): string | Promise<string>
}

/** The object's side: tickets it handed out and not yet redeemed, in memory only. */
export class LocalsTickets {
  readonly #waiting = new Map<string, { locals: Locals; expires: number }>()

  issue(locals: Locals, now: number = Date.now()): string {
    // Swept here rather than by a timer, which would keep the object awake.
    for (const [ticket, entry] of this.#waiting) if (entry.expires <= now) this.#waiting.delete(ticket)
    const ticket = crypto.randomUUID()
    this.#waiting.set(ticket, { locals, expires: now + TICKET_LIFETIME_MS })
    return ticket
  }

  /**
   * The locals an upgrade brings: none without the header, the ticket's
   * locals once, and undefined for a header that names no live ticket
   * (forged, malformed, reused or expired), which the caller refuses.
   */
  redeem(request: Request, now: number = Date.now()): Locals | undefined {
    const ticket = request.headers.get(LOCALS_HEADER)
    if (ticket === null) return {}
    const entry = this.#waiting.get(ticket)
    if (entry === undefined) return undefined
    this.#waiting.delete(ticket)
    return entry.expires > now ? entry.locals : undefined
  }
}

export function hasLocals(locals: object): boolean {
  for (const _key in locals) return true
  return false
}
