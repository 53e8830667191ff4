#!/usr/bin/env node
// `npm test`: every package's vitest suite through turbo (one package at a time on a 2-core
// machine), then one closing line that adds up all the suites: "tests: N passed, N failed".
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const args = ['turbo', 'run', 'test', '--concurrency=1', ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } });
const totals = { passed: 0, failed: 0, skipped: 0 };
const ANSI = /\x1b\[[0-9;]*m/g;

for await (const line of createInterface({ input: child.stdout })) {
  process.stdout.write(`${line}\n`);
  const plain = line.replace(ANSI, '');
  const match = /\bTests\s+(.+)\(\d+\)\s*$/.exec(plain);
  if (!match) continue;
  for (const part of match[1].split('|')) {
    const count = /(\d+)\s+(passed|failed|skipped|todo)/.exec(part.trim());
    if (count && count[2] in totals) totals[count[2]] += Number(count[1]);
  }
}
const code = await new Promise((resolve) => child.on('close', resolve));
process.stdout.write(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
process.exit(code === 0 && totals.failed === 0 ? 0 : 1);
