#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NatsServerMissingError } from '@clarion/nats';
import { runDemo, SAMPLE_CSV } from './demo.js';
import { REPO_ROOT, startStack, SERVICE_NAMES } from './stack.js';

const USAGE = `Usage: clarion <command> [options]

Commands:
  start                 Start NATS, voice-sim and the four services (embedded store unless MONGO_URL)
      --cps N           account calls per second (default 3, Vonage's default)
      --time-scale X    voice-sim call durations × X (default 1)
  demo                  Run a whole broadcast on a sample list and print the report
      --csv FILE        contact export to use (default: the shipped sample)
      --country CC      country for national-format numbers (default US)
      --cps N           calls per second (default 20)
      --json            print the final summary as one JSON line
  help                  Show this help

Exit codes: 0 success, 1 the run finished with problems, 2 bad usage, 3 a prerequisite is missing.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo': {
      const { values } = parseArgs({
        args: rest,
        options: {
          csv: { type: 'string', default: SAMPLE_CSV },
          country: { type: 'string', default: 'US' },
          cps: { type: 'string', default: '20' },
          json: { type: 'boolean', default: false },
          'time-scale': { type: 'string', default: '0.02' },
          timeout: { type: 'string', default: '300' },
        },
      });
      const cps = Number(values.cps);
      if (!(cps > 0)) return usage(`--cps must be a positive number, got "${values.cps}"`);
      if (!/^[A-Za-z]{2}$/.test(values.country)) return usage(`--country must be a 2-letter code such as US or GB`);
      const result = await runDemo({
        csv: values.csv,
        country: values.country.toUpperCase(),
        cps,
        json: values.json,
        timeScale: Number(values['time-scale']),
        timeoutMs: Number(values.timeout) * 1000,
        out: process.stdout,
        err: process.stderr,
      });
      return result.ok ? 0 : 1;
    }
    case 'start': {
      const { values } = parseArgs({
        args: rest,
        options: { cps: { type: 'string', default: '3' }, 'time-scale': { type: 'string', default: '1' } },
      });
      const stateDir = join(REPO_ROOT, '.clarion');
      mkdirSync(stateDir, { recursive: true });
      process.stderr.write('Starting Clarion ...\n');
      const stack = await startStack({
        stateDir,
        natsUrl: process.env.NATS_URL,
        mongoUrl: process.env.MONGO_URL,
        preferDefaultPorts: true,
        accountCps: Number(values.cps),
        timeScale: Number(values['time-scale']),
        signed: true,
      });
      const runtime = {
        natsUrl: stack.natsUrl,
        apiToken: stack.secrets.apiToken,
        urls: Object.fromEntries(SERVICE_NAMES.map((n) => [n, stack.url(n)])),
      };
      writeFileSync(join(stateDir, 'runtime.json'), JSON.stringify(runtime, null, 2));
      process.stdout.write(
        [
          '',
          'Clarion is running.',
          `  NATS          ${stack.natsUrl}`,
          ...SERVICE_NAMES.map((n) => `  ${n.padEnd(13)} ${stack.url(n)}`),
          `  store         ${process.env.MONGO_URL ? 'MongoDB' : `embedded (${join(stateDir, 'store')})`}`,
          `  API token     ${stack.secrets.apiToken}`,
          `  dashboard     ${stack.url('reporter')}/#token=${stack.secrets.apiToken}`,
          `  logs          ${join(stateDir, 'logs')}`,
          '',
          'Send a broadcast with any NATS client, for example:',
          `  nats --server ${stack.natsUrl} request broadcast.request '{"name":"Test","message":{"text":"Hello"},"audience":{"numbers":["+14155550100"]}}'`,
          '',
          'Press Ctrl-C to stop.',
          '',
        ].join('\n'),
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      process.stderr.write('\nStopping ...\n');
      await stack.stop();
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      return usage(`unknown command "${command}"`);
  }
}

function usage(problem: string): number {
  process.stderr.write(`clarion: ${problem}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof NatsServerMissingError) {
      process.stderr.write(`clarion: ${error.message}\n`);
      process.exit(3);
    }
    process.stderr.write(`clarion: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
