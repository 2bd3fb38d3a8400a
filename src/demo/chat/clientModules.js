// src/client compiled to JavaScript, which wrangler.toml's [build] command (buildClient.mjs)
// writes before every bundle, so the page can import the package's own client.
export { default } from '../../../.wrangler/demo-client/modules.js'
