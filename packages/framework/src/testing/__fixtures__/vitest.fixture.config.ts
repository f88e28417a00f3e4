import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** The vitest that `conformance.test.ts` runs on `plugins.fixture.ts`, apart from the repository's projects. */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  test: { include: ['plugins.fixture.ts'] },
});
