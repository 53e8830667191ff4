#!/usr/bin/env node
// The `clarion` command. A committed shim, so `npx clarion` is linked by `npm ci` before anything is
// built; it runs the compiled CLI, or says how to build it.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(compiled)) {
  process.stderr.write('clarion: the CLI is not built yet; run `npm run build` (or `npm start`) in the repository first\n');
  process.exit(3);
}
await import(compiled.href);
