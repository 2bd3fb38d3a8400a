/** `durable-websocket/client` as one ES module's source: what the page imports from /chat/client.js. */
declare const clientBundle: string
export default clientBundle
