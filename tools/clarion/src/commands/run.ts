import { parseArgs } from 'node:util';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runDemo, SAMPLE_CSV } from '../demo.js';
import { REPO_ROOT, startStack, SERVICE_NAMES } from '../stack.js';
import { CliError, EXIT, type ExitCode, type Io } from './context.js';

function options<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw new CliError(EXIT.usage, (error as Error).message);
  }
}

/** `clarion demo`: a whole broadcast on a private stack, then the report. */
export async function demoCommand(rest: string[], io: Io): Promise<ExitCode> {
  const { values } = options(() =>
    parseArgs({
      args: rest,
      options: {
        csv: { type: 'string', default: SAMPLE_CSV },
        country: { type: 'string', default: 'US' },
        cps: { type: 'string', default: '20' },
        json: { type: 'boolean', default: false },
        'time-scale': { type: 'string', default: '0.02' },
        timeout: { type: 'string', default: '300' },
      },
    }),
  );
  const cps = Number(values.cps);
  if (!(cps > 0)) throw new CliError(EXIT.usage, `--cps must be a positive number, got "${values.cps}"`);
  if (!/^[A-Za-z]{2}$/.test(values.country)) throw new CliError(EXIT.usage, `--country must be a 2-letter code such as US or GB`);
  const result = await runDemo({
    csv: values.csv,
    country: values.country.toUpperCase(),
    cps,
    json: values.json,
    timeScale: Number(values['time-scale']),
    timeoutMs: Number(values.timeout) * 1000,
    out: io.out,
    err: io.err,
  });
  return result.ok ? EXIT.ok : EXIT.failed;
}

/** `clarion start`: the whole system until Ctrl-C; writes .clarion/runtime.json for the other commands. */
export async function startCommand(rest: string[], io: Io): Promise<ExitCode> {
  const { values } = options(() =>
    parseArgs({
      args: rest,
      options: { cps: { type: 'string', default: '3' }, 'time-scale': { type: 'string', default: '1' } },
    }),
  );
  const stateDir = join(REPO_ROOT, '.clarion');
  mkdirSync(stateDir, { recursive: true });
  io.err.write('Starting Clarion ...\n');
  const stack = await startStack({
    stateDir,
    natsUrl: io.env.NATS_URL,
    mongoUrl: io.env.MONGO_URL,
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
  const runtimeFile = join(stateDir, 'runtime.json');
  writeFileSync(runtimeFile, JSON.stringify(runtime, null, 2));
  io.out.write(
    [
      '',
      'Clarion is running.',
      `  NATS          ${stack.natsUrl}`,
      ...SERVICE_NAMES.map((n) => `  ${n.padEnd(13)} ${stack.url(n)}`),
      `  store         ${io.env.MONGO_URL ? 'MongoDB' : `embedded (${join(stateDir, 'store')})`}`,
      `  API token     ${stack.secrets.apiToken}`,
      `  dashboard     ${stack.url('reporter')}/#token=${stack.secrets.apiToken}`,
      `  logs          ${join(stateDir, 'logs')}`,
      '',
      `In another terminal, the CLI finds this system through ${runtimeFile}:`,
      '  npx clarion lists create "My list"',
      '  npx clarion import <list id> tools/clarion/examples/contacts-demo.csv',
      '  npx clarion send --name "Test" --text "Hello {{name}}" --list <list id> --watch',
      '  npx clarion send --name "Test" --text "Hello" --number +14155550100 --watch',
      '',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  io.err.write('\nStopping ...\n');
  await stack.stop();
  return EXIT.ok;
}
