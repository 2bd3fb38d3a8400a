const PREFIX = '[durable-websocket]'

/** One prefix for every line the package logs, so users can filter on it. */
export const log = {
  error: (message: string, ...details: unknown[]): void => {
    console.error(`${PREFIX} ${message}`, ...details)
  },
  warn: (message: string, ...details: unknown[]): void => {
    console.warn(`${PREFIX} ${message}`, ...details)
  },
}
