// The package's client bundled into one browser module (as source text), which wrangler.toml's
// [build] command (buildClient.mjs) writes before every bundle.
export { default } from '../../../.wrangler/demo-client/client.js'
