/**
 * Lets Node run the bench's TypeScript as it is (type stripping) while it
 * imports the package's own source, whose relative imports name `.js` files
 * as TypeScript's bundler resolution wants: a `.js` that does not exist is
 * looked for as `.ts`. Loaded with `node --import ./bench/lib/sourceImports.ts`
 * (package.json's bench scripts).
 */
import { registerHooks } from 'node:module'

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context)
    } catch (error) {
      const relative = specifier.startsWith('./') || specifier.startsWith('../')
      if (!relative || !specifier.endsWith('.js')) throw error
      return nextResolve(`${specifier.slice(0, -3)}.ts`, context)
    }
  },
})
