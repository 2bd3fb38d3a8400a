import type { ObjectSide } from '../options.js'
import { SESSION_PROTOCOL, readSessionOffer, type SessionOffer } from '../shared/sessionProtocol.js'
import { offeredProtocols, type Admission } from './admission.js'
import { alarmNoLaterThan } from './alarm.js'
import { ConnectionEntry, type ConnectionHost } from './connection.js'
import type { ConnectionTable } from './connectionTable.js'
import type { Dispatch } from './dispatch.js'
import type { PresenceDesk } from './presence/desk.js'
import type { SessionDesk } from './session/desk.js'
import type { SessionKeys } from './session/opening.js'
import type { ShardSide } from './shard/side.js'
import type { PlainTransport } from './transport.js'

type Entry<Env, Data extends object, In, Out> = ConnectionEntry<Env, Data, In, Out>

/** What an upgrade needs from the rest of the object; the manager hands each part over once. */
export interface UpgradeParts<Env, Data extends object, In, Out, L extends object> {
  readonly ctx: DurableObjectState
  readonly options: ObjectSide<Env, Data, In, Out, L>
  readonly table: ConnectionTable<Env, Data, In, Out>
  readonly admission: Admission<Env, Data, In, Out, L>
  readonly desk: SessionDesk<Env, Data, In, Out>
  readonly dispatch: Dispatch<Env, Data, In, Out, L>
  readonly host: ConnectionHost<Env, Data, In, Out>
  readonly plain: PlainTransport<Env, Data, In, Out>
  readonly shard: ShardSide<Env, Data, In, Out> | undefined
  readonly presence: PresenceDesk<L> | undefined
}

/**
 * An upgrade the Worker already checked, from its request to the 101: the
 * awaits (hashing a session's tokens, claiming a session another leaf
 * holds) come first; then the checks and the accept run as one synchronous
 * call ({@link Upgrades.#admit}), so two upgrades cannot both take a last
 * place; then the alarms and `open`. Every refusal comes before the accept:
 * nothing is accepted and then dropped.
 */
export class Upgrades<Env, Data extends object, In, Out, L extends object> {
  readonly #parts: UpgradeParts<Env, Data, In, Out, L>

  constructor(parts: UpgradeParts<Env, Data, In, Out, L>) {
    this.#parts = parts
  }

  async accept(request: Request, locals: L): Promise<Response> {
    const { ctx, options, desk, admission, dispatch, shard } = this.#parts
    desk.reconcile()
    const offer = readSessionOffer(offeredProtocols(request))
    let keys = offer.wanted ? await desk.opening.keys(offer) : undefined
    const claimed =
      keys && (await shard?.claimsHere?.claim(offer, keys, () => admission.owner(request, locals)))
    if (claimed instanceof Response) return claimed
    keys = claimed ?? keys
    const accepted = this.#admit(request, locals, offer, keys)
    if (accepted instanceof Response) return accepted
    const { entry, client, protocol } = accepted
    const { idleTimeout } = options
    if (idleTimeout !== undefined) await alarmNoLaterThan(ctx.storage, Date.now() + idleTimeout)
    // A new session ends at maxAge even if it never drops: the alarm sees to it.
    const store = desk.store
    if (store !== undefined && keys !== undefined && !entry.transport.resumed)
      await alarmNoLaterThan(ctx.storage, Date.now() + store.maxAge)
    const opening = dispatch.open(entry, request, locals)
    if (opening !== undefined) ctx.waitUntil(opening)
    // Refuses permessage-deflate: the runtime inflates a frame before any size check of ours, so a
    // small compressed frame could cost 32 MiB. An empty value counts as absent and the runtime
    // would fill in the client's offer; one that names no extension it knows leaves compression
    // off on every hop to the client. test/e2e/deflate.test.ts pins it.
    const headers: Record<string, string> = { 'Sec-WebSocket-Extensions': 'no-compression' }
    const chosen = offer.wanted ? SESSION_PROTOCOL : protocol
    if (chosen !== undefined) headers['Sec-WebSocket-Protocol'] = chosen
    return new Response(null, { status: 101, webSocket: client, headers })
  }

  /** The checks and the accept: synchronous, so nothing can await between them. */
  #admit(
    request: Request,
    locals: L,
    offer: SessionOffer,
    keys: SessionKeys | undefined,
  ): Response | { entry: Entry<Env, Data, In, Out>; client: WebSocket; protocol: string | undefined } {
    const { admission, desk, shard, presence } = this.#parts
    const admitted = admission.check(request, locals, offer, keys)
    if (admitted instanceof Response) return admitted
    const { tags, protocol, owner } = admitted
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket]
    const entry =
      keys === undefined
        ? this.#acceptPlain(server, tags)
        : desk.opening.accept(server, offer, keys, tags, protocol, owner)
    entry.key = admitted.key
    shard?.accepted(entry.view.tags)
    if (admitted.arrival !== undefined) presence?.arrived(entry.id, admitted.arrival, keys !== undefined)
    return { entry, client, protocol }
  }

  /**
   * Not stored yet: the record is written once `open` is done, the one write
   * a hand-written object makes too. Until then the connection lives in
   * memory, and the object cannot hibernate while `open` is still running.
   */
  #acceptPlain(server: WebSocket, tags: string[]): Entry<Env, Data, In, Out> {
    const { ctx, table, host, plain } = this.#parts
    const id = table.nextId()
    ctx.acceptWebSocket(server, tags)
    const entry = new ConnectionEntry(server, id, {} as Data, Date.now(), 'opening', host, plain)
    table.track(entry)
    return entry
  }
}
