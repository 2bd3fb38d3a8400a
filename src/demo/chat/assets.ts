import clientBundle from './clientBundle.js'
import page from './page.html'

const NO_CACHE = { 'Cache-Control': 'no-cache' }

/** The chat page: plain HTML, CSS and a module script that imports the client below. */
export function chatPage(): Response {
  return new Response(page, { headers: { 'Content-Type': 'text/html; charset=utf-8', ...NO_CACHE } })
}

/** The package's client (`durable-websocket/client`) as one bundled module, as the page's script imports it. */
export function clientScript(): Response {
  return new Response(clientBundle, {
    headers: { 'Content-Type': 'text/javascript; charset=utf-8', ...NO_CACHE },
  })
}
