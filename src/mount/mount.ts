import { Router } from 'itty-router'
import type { FetchHandler } from './forward.js'

/** The user's own app: an itty-router router or anything with a Worker-style fetch. */
export interface App<Env> {
  fetch(
    request: Request,
    env: Env,
    ctx: ExecutionContext,
  ): Response | undefined | Promise<Response | undefined>
}

/** What a mount returns: a Worker's default export, and an app another mount can take. */
export interface MountedWorker<Env> {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response>
}

/**
 * `path` reaches the default room and `path/:room` the named one. A plain
 * Router, not AutoRouter: AutoRouter's response helpers (format, corsify)
 * would rewrite the 101 that carries the socket.
 */
export function mountAt<Env>(path: string, upgrade: FetchHandler<Env>, app: App<Env>): MountedWorker<Env> {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(`mount() takes a path starting with "/", e.g. "/ws"; got ${JSON.stringify(path)}.`)
  }
  if (typeof (app as App<Env> | undefined)?.fetch !== 'function') {
    throw new TypeError(
      'mount() takes your app as its second argument: an itty-router router or any { fetch }.',
    )
  }
  const base = path.replace(/\/+$/, '')
  const router = Router<Request, [Env, ExecutionContext]>()
  router.all(base, (request, env, ctx) => upgrade(request, env, ctx))
  router.all(`${base}/:room`, (request, env, ctx) => upgrade(request, env, ctx))
  // Deeper paths under the mount are no room of ours: say so rather than hand them to the app.
  router.all(
    `${base}/*`,
    () => new Response('Bad Request: a room name may not contain "/".\n', { status: 400 }),
  )
  router.all('*', async (request, env, ctx) => (await app.fetch(request, env, ctx)) ?? notFound())
  return {
    fetch: async (request, env, ctx) =>
      ((await router.fetch(request, env, ctx)) as Response | undefined) ?? notFound(),
  }
}

function notFound(): Response {
  return new Response('Not Found\n', { status: 404 })
}
