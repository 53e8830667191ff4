#!/usr/bin/env node
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bench } from './benches/types.js';

// `npm run bench [-- name [args…]]`: each module in benches/ exports `run`; each prints one JSON line.
const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), 'benches');
const known = readdirSync(BENCH_DIR)
  .filter((f) => f.endsWith('.js') && f !== 'types.js')
  .map((f) => f.slice(0, -3))
  .sort();

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  const names = first === undefined || first === 'all' ? known : [first];
  for (const name of names) {
    if (!known.includes(name)) {
      process.stderr.write(`unknown benchmark "${name}"; known: ${known.join(', ')}\n`);
      return 2;
    }
    const { run } = (await import(join(BENCH_DIR, `${name}.js`))) as { run: Bench };
    const started = Date.now();
    const figures = await run(first === undefined || first === 'all' ? [] : rest);
    const conditions = { node: process.version, cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30) };
    process.stdout.write(`${JSON.stringify({ bench: name, at: new Date().toISOString(), seconds: (Date.now() - started) / 1000, ...conditions, ...figures })}\n`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
