import { defineConfig } from 'vitest/config'

// Real `wrangler dev` processes and real sockets: one file at a time, with room for start-up and idle waits.
export default defineConfig({
  test: {
    name: 'e2e',
    environment: 'node',
    include: ['test/e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 90_000,
  },
})
