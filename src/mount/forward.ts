import { DurableWebSocketError } from '../core/errors.js'
import type { Locals } from '../core/events.js'
import { LOCALS_HEADER, hasLocals, type LocalsDesk } from '../core/locals.js'
import { log } from '../core/log.js'
import type { ResolvedShards, WorkerSide } from '../options.js'
import type { ShardStub } from '../object/shard/messages.js'
import { homeLeaf, leafName } from '../object/shard/names.js'
import { DEFAULT_ROOM, isRoomName, roomNameProblem } from '../shared/roomName.js'
import { placementHints } from './leafPlacement.js'
import { runMiddleware } from './middleware.js'
import { defaultUpgradeError, findUpgradeProblem } from './upgrade.js'

/**
 * What `handler()` and `run()` return. `room` names the room where the router
 * keeps path parameters elsewhere than itty-router's `request.params`, e.g.
 * Hono's `c.req.param('room')`. `ctx` is typed as Hono types
 * `c.executionCtx`, which is the runtime's own ExecutionContext at run time.
 */
export type FetchHandler<Env> = (
  request: Request,
  env: Env,
  ctx: Pick<ExecutionContext, 'waitUntil' | 'passThroughOnException'>,
  room?: string,
) => Promise<Response>

/** Picks the room for an upgrade request; see the `room` option. */
export type RoomFunction<Env, L = Locals> = (
  request: Request,
  env: Env,
  locals: L,
) => string | Promise<string>

/** itty-router puts path parameters on the request; a `:room` segment names the room. */
function roomFromPath(request: Request, given: unknown): unknown {
  if (given !== undefined) return given
  const params = (request as Request & { params?: Record<string, string | undefined> }).params
  return params?.room ?? DEFAULT_ROOM
}

/**
 * Checks the handshake, runs the middleware, and hands the upgrade to the
 * object. Anything that throws here is logged and answered with a bare 500:
 * no stack trace or internal message ever reaches the client.
 */
export function createUpgradeHandler<Env, L extends object>(
  worker: WorkerSide<Env, L>,
  withMiddleware: boolean,
): FetchHandler<Env> {
  const chain = withMiddleware ? worker.chain : []
  return async (request, env, ctx, given) => {
    try {
      const problem = findUpgradeProblem(request)
      if (problem !== undefined) {
        const onError = worker.handlers.get('error')
        return onError === undefined ? defaultUpgradeError(problem) : await onError(request, env)
      }
      // The middleware fills these in; until then they are empty, whatever `L` says.
      const locals = {} as L
      if (chain.length > 0) {
        const stopped = await runMiddleware(chain, request, { env, ctx: ctx as ExecutionContext, locals })
        if (stopped !== undefined) return stopped
      }
      // After the middleware, so a room function can use what it verified (e.g. the user's tenant).
      const pickRoom = worker.room
      const room =
        pickRoom === undefined ? roomFromPath(request, given) : await pickRoom(request, env, locals)
      if (!isRoomName(room)) {
        return new Response(`Bad Request: ${String(roomNameProblem(room))}.\n`, { status: 400 })
      }
      const namespace = namespaceOf(env, worker.binding)
      const stub =
        worker.shards === undefined
          ? namespace.getByName(room)
          : await placeOnLeaf(request, namespace, room, worker.shards)
      return await forwardUpgrade(request, stub, locals)
    } catch (error) {
      log.error(`the upgrade request for ${new URL(request.url).pathname} failed:`, error)
      return new Response('Internal Server Error\n', { status: 500 })
    }
  }
}

export function objectStub<Target extends Rpc.DurableObjectBranded | undefined = undefined>(
  env: unknown,
  binding: string,
  room: string,
): DurableObjectStub<Target> {
  const badRoom = roomNameProblem(room)
  if (badRoom !== undefined) {
    throw new DurableWebSocketError(
      'ERR_DWS_INVALID_ROOM',
      `${JSON.stringify(room)} is not a room name: ${badRoom}.`,
    )
  }
  return namespaceOf<Target>(env, binding).getByName(room)
}

function namespaceOf<Target extends Rpc.DurableObjectBranded | undefined = undefined>(
  env: unknown,
  binding: string,
): DurableObjectNamespace<Target> {
  const namespace = (env as Record<string, unknown> | undefined)?.[binding] as
    DurableObjectNamespace<Target> | undefined
  if (typeof namespace?.getByName !== 'function') {
    throw new DurableWebSocketError(
      'ERR_DWS_MISSING_BINDING',
      `env.${binding} is not a Durable Object namespace: bind your WebSocketObject subclass as "${binding}" under [[durable_objects.bindings]] in wrangler.toml.`,
    )
  }
  return namespace
}

/**
 * A sharded room's upgrade goes to the first leaf with room (docs/sharding.md),
 * asked in turn from the one this isolate placed the room's last upgrade on
 * (leafPlacement.ts); when all are full, to the last asked, which refuses it
 * as a full room does. A resume goes back to the leaf that holds its
 * session, which its token names, while that leaf has room; when it is
 * full, the resume is placed like a new upgrade, and the leaf it lands on
 * claims the session (object/shard/claims.ts).
 */
async function placeOnLeaf(
  request: Request,
  namespace: DurableObjectNamespace,
  room: string,
  { count, binding }: ResolvedShards,
): Promise<DurableObjectStub> {
  const home = homeLeaf(request, count)
  if (home !== undefined) {
    const leaf = namespace.getByName(leafName(room, home))
    if (await (leaf as unknown as ShardStub).shardHasRoom()) return leaf
  }
  const key = `${binding}/${room}`
  const order = placementHints.order(key, count)
  let chosen = order.at(-1) ?? 0
  for (const index of order.slice(0, -1)) {
    const leaf = namespace.getByName(leafName(room, index))
    if (await (leaf as unknown as ShardStub).shardHasRoom()) {
      chosen = index
      break
    }
  }
  placementHints.placed(key, chosen)
  return namespace.getByName(leafName(room, chosen))
}

/**
 * A fresh Request, not the one the router saw: `stub.fetch` rejects requests
 * that itty-router has wrapped, and a copy lets us drop a header the client
 * sent. Locals go over RPC first (one more call to the same object, only
 * when there are any), and the upgrade carries the ticket for them.
 */
async function forwardUpgrade(request: Request, stub: DurableObjectStub, locals: object): Promise<Response> {
  const headers = new Headers(request.headers)
  headers.delete(LOCALS_HEADER)
  if (hasLocals(locals)) {
    headers.set(LOCALS_HEADER, await (stub as unknown as LocalsDesk).issueLocalsTicket(locals as Locals))
  }
  return stub.fetch(new Request(request.url, { method: 'GET', headers }))
}
