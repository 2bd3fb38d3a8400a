import { DurableWebSocketError } from '../core/errors.js'

/** What `static websocket` holds: a module made by `websocket()`. */
export interface ServedModule {
  readonly binding: string
}

/**
 * The modules this script made, each with what its object runs. This is per
 * script, not per object: it only lets an object class find its handlers,
 * and holds no connection state. Kept here rather than on the module, so
 * the module's public surface is only what the docs list.
 */
const modules = new Map<ServedModule, object>()

export function register(module: ServedModule, objectSide: object): void {
  modules.set(module, objectSide)
}

/**
 * A subclass names its module with `static websocket = ws`; without that, the
 * script's only module is used, which keeps the one-endpoint case free of
 * ceremony.
 */
export function resolveModule(objectClass: { name: string; websocket?: ServedModule | undefined }): {
  module: ServedModule
  objectSide: object
} {
  const named = objectClass.websocket
  if (named !== undefined) {
    const objectSide = modules.get(named)
    if (objectSide !== undefined) return { module: named, objectSide }
    throw new DurableWebSocketError(
      'ERR_DWS_NO_MODULE',
      `${objectClass.name}.websocket is not a module made by websocket(): set it to the value websocket() returned.`,
    )
  }
  if (modules.size === 1) {
    const [only] = modules
    if (only !== undefined) return { module: only[0], objectSide: only[1] }
  }
  throw new DurableWebSocketError(
    'ERR_DWS_NO_MODULE',
    modules.size === 0
      ? `${objectClass.name} extends WebSocketObject, but this script never called websocket(): make the module at module scope, next to the class.`
      : `${objectClass.name} extends WebSocketObject, but this script made ${String(modules.size)} websocket() modules: say which one it serves with \`static websocket = yourModule\`.`,
  )
}
