import { defineConfig } from 'vitest/config';

export const config = defineConfig({ test: { testTimeout: 30_000, hookTimeout: 30_000 } });
// Vitest loads the config's default export; this is the one default export the tool requires.
export default config;
