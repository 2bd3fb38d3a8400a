/**
 * The Worker's ticket on an upgrade it places on a leaf of a sharded room,
 * and the leaf's answer when it is full: "not me, try the next leaf"
 * (docs/sharding.md, "Placement"). The Worker puts a fresh random ticket on
 * every upgrade it may still pass on, and believes only an answer that
 * echoes it, so neither a client's header nor an app's response can pass
 * for a leaf's. The Worker drops the header a client sent (mount/forward.ts),
 * and never returns such an answer: a client sees only an ordinary refusal.
 */
export const LEAF_FULL_HEADER = 'x-durable-websocket-leaf-full'

/**
 * On a leaf whose last place is taken: the answer for an upgrade that the
 * Worker may pass on to another leaf, or undefined when it may not (it is
 * then refused as an ordinary full room refuses it). Never a socket: the
 * upgrade is not accepted, and no id is spent.
 */
export function fullLeafAnswer(request: Request): Response | undefined {
  const ticket = request.headers.get(LEAF_FULL_HEADER)
  if (ticket === null || ticket === '') return undefined
  return new Response(null, { status: 503, headers: { [LEAF_FULL_HEADER]: ticket } })
}

/** In the Worker: whether a leaf answered the upgrade carrying `ticket` with "full, try the next". */
export function isFullLeafAnswer(answer: Response, ticket: string): boolean {
  return answer.status === 503 && answer.webSocket === null && answer.headers.get(LEAF_FULL_HEADER) === ticket
}
