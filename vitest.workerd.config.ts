import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: './test/workerd/fixture/worker.ts',
      wrangler: { configPath: './test/workerd/fixture/wrangler.toml' },
    }),
  ],
  // Each test file gets a fresh runtime and fresh storage; the tests of one file share their objects.
  test: { name: 'workerd', include: ['test/workerd/**/*.test.ts'] },
})
