import { defineConfig } from 'vitest/config'

// Pure logic only, in plain Node: each of these also has a test against the real runtime or wrangler dev.
export default defineConfig({
  test: { name: 'unit', environment: 'node', include: ['test/unit/**/*.test.ts'] },
})
