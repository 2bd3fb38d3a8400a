import clientModules from './clientModules.js'
import page from './page.html'

const NO_CACHE = { 'Cache-Control': 'no-cache' }

/** The chat page: plain HTML, CSS and a module script that imports the client below. */
export function chatPage(): Response {
  return new Response(page, { headers: { 'Content-Type': 'text/html; charset=utf-8', ...NO_CACHE } })
}

/** One module of the package's client (`durable-websocket/client`), as the page's script imports it. */
export function clientModule(file: string): Response | undefined {
  const source = Object.hasOwn(clientModules, file) ? clientModules[file] : undefined
  if (source === undefined) return undefined
  return new Response(source, { headers: { 'Content-Type': 'text/javascript; charset=utf-8', ...NO_CACHE } })
}
