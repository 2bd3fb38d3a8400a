/**
 * The object's storage as handlers reach it: the same in every way, except
 * that `deleteAll` also makes the package forget what it cached about its
 * tables (the log's head, the sessions), and keeps the connection-id
 * counter, so ids are never handed out twice.
 */
export function forgetfulStorage(
  storage: DurableObjectStorage,
  prepare: () => () => void,
): DurableObjectStorage {
  return new Proxy(storage, {
    get(target, property) {
      if (property === 'deleteAll') {
        return async (options?: DurableObjectPutOptions) => {
          const forget = prepare()
          await target.deleteAll(options)
          forget()
        }
      }
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    },
  })
}
