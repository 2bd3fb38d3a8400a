import type { Locals } from '../core/events.js'

export interface MiddlewareContext<Env, L = Locals> {
  readonly env: Env
  readonly ctx: ExecutionContext
  /** Put JSON-serializable values here (e.g. a verified user); `open` receives them. */
  readonly locals: L
}

/** Return a Response to stop the request (e.g. 401 or 403); return nothing to let it through. */
export type MiddlewareHandler<Env = Cloudflare.Env, L = Locals> = (
  request: Request,
  context: MiddlewareContext<Env, L>,
) => Response | undefined | void | Promise<Response | undefined | void>

/**
 * Makes a middleware handler from its options. It runs once, when
 * `websocket()` is called, so bad options fail at start-up rather than on
 * the first request.
 */
export type MiddlewareFactory<Options, Env = Cloudflare.Env, L = Locals> = (
  options: Options,
) => MiddlewareHandler<Env, L>

/**
 * One step of the chain. `never` accepts a factory of any options type, so a
 * bare `[factory, options]` pair is checked only by the factory, at start-up;
 * {@link use} checks the options against the factory when it compiles.
 */
export type MiddlewareEntry<Env = Cloudflare.Env, L = Locals> = readonly [
  factory: MiddlewareFactory<never, Env, L>,
  options?: unknown,
]

/**
 * `[factory, options]` with the options checked against what the factory
 * takes, so a misspelt option fails to compile:
 * `middleware: [use(allowOrigins, { origins: ['https://example.com'] })]`.
 * The locals type the factory's handler writes (`L`) carries on to `open`.
 */
export function use<Options, Env = Cloudflare.Env, L = Locals>(
  factory: MiddlewareFactory<Options, Env, L>,
  ...options: undefined extends Options ? [options?: NoInfer<Options>] : [options: NoInfer<Options>]
): MiddlewareEntry<Env, L> {
  return [factory, options[0]]
}

/** Runs the chain in order; the first Response ends it. */
export async function runMiddleware<Env, L>(
  chain: readonly MiddlewareHandler<Env, L>[],
  request: Request,
  context: MiddlewareContext<Env, L>,
): Promise<Response | undefined> {
  for (const handler of chain) {
    const result = await handler(request, context)
    if (result instanceof Response) return result
  }
  return undefined
}
