import type { Locals } from '../core/events.js'

export interface MiddlewareContext<Env> {
  readonly env: Env
  readonly ctx: ExecutionContext
  /** Put JSON-serializable values here (e.g. a verified user); `open` receives them. */
  readonly locals: Locals
}

/** Return a Response to stop the request (e.g. 401 or 403); return nothing to let it through. */
export type MiddlewareHandler<Env = Cloudflare.Env> = (
  request: Request,
  context: MiddlewareContext<Env>,
) => Response | undefined | void | Promise<Response | undefined | void>

/**
 * The seed's `[middleware_class, [config]]` pair becomes `[factory, options]`.
 * The factory runs once, when `websocket()` is called, so bad options fail
 * at start-up rather than on the first request.
 */
export type MiddlewareFactory<Options, Env = Cloudflare.Env> = (options: Options) => MiddlewareHandler<Env>

// `never` accepts a factory of any options type; each factory checks its own options at run time.
export type MiddlewareEntry<Env = Cloudflare.Env> = readonly [
  factory: MiddlewareFactory<never, Env>,
  options?: unknown,
]

/** Runs the chain in order; the first Response ends it. */
export async function runMiddleware<Env>(
  chain: readonly MiddlewareHandler<Env>[],
  request: Request,
  context: MiddlewareContext<Env>,
): Promise<Response | undefined> {
  for (const handler of chain) {
    const result = await handler(request, context)
    if (result instanceof Response) return result
  }
  return undefined
}
