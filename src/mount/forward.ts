import { DurableWebSocketError } from '../core/errors.js'
import type { Locals } from '../core/events.js'
import { LOCALS_HEADER, hasLocals, type LocalsDesk } from '../core/locals.js'
import { log } from '../core/log.js'
import type { WorkerSide } from '../options.js'
import { LEAF_FULL_HEADER } from '../object/shard/leafFull.js'
import { DEFAULT_ROOM, isRoomName, roomNameProblem } from '../shared/roomName.js'
import { runMiddleware } from './middleware.js'
import { placeOnLeaf } from './placeOnLeaf.js'
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
      if (worker.shards === undefined)
        return await forwardUpgrade(request, namespace.getByName(room), locals, undefined)
      return await placeOnLeaf(request, namespace, room, worker.shards, (stub, ticket) =>
        forwardUpgrade(request, stub, locals, ticket),
      )
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
 * A fresh Request, not the one the router saw: `stub.fetch` rejects requests
 * that itty-router has wrapped, and a copy lets us drop the headers a client
 * may not send. Locals go over RPC first (one more call to the same object,
 * only when there are any), and the upgrade carries the ticket for them.
 * `placement` is the sharded room's ticket that lets a full leaf pass the
 * upgrade on (mount/placeOnLeaf.ts).
 */
async function forwardUpgrade(
  request: Request,
  stub: DurableObjectStub,
  locals: object,
  placement: string | undefined,
): Promise<Response> {
  const headers = new Headers(request.headers)
  headers.delete(LOCALS_HEADER)
  headers.delete(LEAF_FULL_HEADER)
  if (placement !== undefined) headers.set(LEAF_FULL_HEADER, placement)
  if (hasLocals(locals)) {
    headers.set(LOCALS_HEADER, await (stub as unknown as LocalsDesk).issueLocalsTicket(locals as Locals))
  }
  return stub.fetch(new Request(request.url, { method: 'GET', headers }))
}
