import { DurableWebSocketError } from '../core/errors.js'

/** The part of a module that the object class needs to find and run it. */
export interface ServedModule {
  readonly binding: string
  // Typed per subclass by the user's own declaration; the registry only carries it.
  readonly behaviour: object
}

/**
 * The modules this script made. This is per script, not per object: it only
 * lets an object class find its handlers, and holds no connection state.
 */
const modules = new Set<ServedModule>()

export function register(module: ServedModule): void {
  modules.add(module)
}

/**
 * A subclass names its module with `static websocket = ws`; without that, the
 * script's only module is used, which keeps the one-endpoint case free of
 * ceremony.
 */
export function resolveModule(objectClass: {
  name: string
  websocket?: ServedModule | undefined
}): ServedModule {
  if (objectClass.websocket !== undefined) return objectClass.websocket
  if (modules.size === 1) {
    const [only] = modules
    if (only !== undefined) return only
  }
  throw new DurableWebSocketError(
    'ERR_DWS_NO_MODULE',
    modules.size === 0
      ? `${objectClass.name} extends WebSocketObject, but this script never called websocket(): make the module at module scope, next to the class.`
      : `${objectClass.name} extends WebSocketObject, but this script made ${String(modules.size)} websocket() modules: say which one it serves with \`static websocket = yourModule\`.`,
  )
}
