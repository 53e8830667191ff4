import { parseArgs } from 'node:util';
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runDemo, SAMPLE_CSV } from '../demo.js';
import { REPO_ROOT, startStack, SERVICE_NAMES, type Stack } from '../stack.js';
import { CliError, columnMapping, countryOption, EXIT, MAP_OPTIONS, positive, type ExitCode, type Io } from './context.js';

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
        ...MAP_OPTIONS,
      },
    }),
  );
  // Every flag and the file are checked before a single process starts.
  const cps = positive(values.cps, '--cps') ?? 20;
  const timeScale = positive(values['time-scale'], '--time-scale') ?? 0.02;
  const timeout = positive(values.timeout, '--timeout') ?? 300;
  const country = countryOption(values.country) ?? 'US';
  const mapping = columnMapping(values);
  let csv: string;
  try {
    csv = readFileSync(values.csv, 'utf8');
  } catch (error) {
    throw new CliError(EXIT.usage, `cannot read ${values.csv}: ${(error as Error).message}`);
  }
  // A header alone (or nothing) is not a list to call: say so instead of an empty "OK".
  if (csv.replace(/^\uFEFF/, '').split(/\r?\n/).filter((line) => line.trim() !== '').length < 2) {
    throw new CliError(EXIT.failed, `no contacts in ${values.csv}`);
  }
  const result = await runDemo({
    csv: values.csv,
    csvText: csv,
    country,
    mapping,
    cps,
    json: values.json,
    timeScale,
    timeoutMs: timeout * 1000,
    out: io.out,
    err: io.err,
  });
  return result.ok ? EXIT.ok : EXIT.failed;
}

/** The lock `clarion start` holds in its state folder, so one folder never runs two systems. */
interface StartLock {
  pid: number;
  natsUrl?: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take `<stateDir>/clarion.pid` (created with `wx`); refuse if a live `start` holds it, replace it if stale. */
export function acquireStartLock(stateDir: string): { file: string; update(lock: StartLock): void; release(): void } {
  const file = join(stateDir, 'clarion.pid');
  for (let attempt = 0; attempt < 2; attempt += 1) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let held: Partial<StartLock> = {};
      try {
        held = JSON.parse(readFileSync(file, 'utf8')) as Partial<StartLock>;
      } catch {
        // Unreadable or half-written: treated as stale below (pid unknown).
      }
      if (typeof held.pid === 'number' && held.pid !== process.pid && isAlive(held.pid)) {
        throw new CliError(
          EXIT.unavailable,
          `Clarion is already running here (pid ${held.pid}, NATS ${held.natsUrl ?? 'still starting'}); stop it first (state folder ${stateDir})`,
        );
      }
      unlinkSync(file);
      continue;
    }
    writeSync(fd, JSON.stringify({ pid: process.pid } satisfies StartLock));
    closeSync(fd);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      try {
        unlinkSync(file);
      } catch {
        // Already gone.
      }
    };
    // A crash between here and the normal release still frees the folder.
    process.once('exit', release);
    return { file, update: (lock) => writeFileSync(file, JSON.stringify(lock)), release };
  }
  throw new CliError(EXIT.unavailable, `cannot take the lock ${file}; another \`clarion start\` is starting in ${stateDir}`);
}

/** `clarion start`: the whole system until Ctrl-C; writes <state dir>/runtime.json for the other commands. */
export async function startCommand(rest: string[], io: Io): Promise<ExitCode> {
  const { values } = options(() =>
    parseArgs({
      args: rest,
      options: {
        cps: { type: 'string', default: '3' },
        'time-scale': { type: 'string', default: '1' },
        'state-dir': { type: 'string', default: join(REPO_ROOT, '.clarion') },
      },
    }),
  );
  const cps = positive(values.cps, '--cps') ?? 3;
  const timeScale = positive(values['time-scale'], '--time-scale') ?? 1;
  const stateDir = resolve(io.cwd, values['state-dir']);
  mkdirSync(stateDir, { recursive: true });
  const lock = acquireStartLock(stateDir);
  const stopped = new Promise<void>((resolveStop) => {
    process.once('SIGINT', () => resolveStop());
    process.once('SIGTERM', () => resolveStop());
  });
  try {
    io.err.write('Starting Clarion ...\n');
    const stack = await startStack({
      stateDir,
      natsUrl: io.env.NATS_URL,
      mongoUrl: io.env.MONGO_URL,
      preferDefaultPorts: true,
      accountCps: cps,
      timeScale,
      signed: true,
    });
    try {
      lock.update({ pid: process.pid, natsUrl: stack.natsUrl });
      const runtime = {
        natsUrl: stack.natsUrl,
        apiToken: stack.secrets.apiToken,
        urls: Object.fromEntries(SERVICE_NAMES.map((n) => [n, stack.url(n)])),
      };
      const runtimeFile = join(stateDir, 'runtime.json');
      writeFileSync(runtimeFile, JSON.stringify(runtime, null, 2));
      const env = runtimeFile === join(REPO_ROOT, '.clarion', 'runtime.json') ? '' : `CLARION_RUNTIME_FILE=${runtimeFile} `;
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
          `  ${env}npx clarion lists create "My list"`,
          `  ${env}npx clarion import <list id> tools/clarion/examples/contacts-demo.csv`,
          `  ${env}npx clarion send --name "Test" --text "Hello {{name}}" --list <list id> --watch`,
          `  ${env}npx clarion send --name "Test" --text "Hello" --number +14155550100 --watch`,
          '',
          'Press Ctrl-C to stop.',
          '',
        ].join('\n'),
      );
      const supervisor = superviseServices(stack, join(stateDir, 'logs'), io.err);
      await stopped;
      supervisor.stop();
      io.err.write('\nStopping ...\n');
    } finally {
      await stack.stop();
    }
  } finally {
    lock.release();
  }
  return EXIT.ok;
}

/** Restarts of one service within this window beyond which `start` stops restarting it. */
const RESTART_WINDOW_MS = 60_000;
const RESTARTS_PER_WINDOW = 5;

/**
 * Bring back a service process that died (a crash, an OOM kill, a stray `kill -9`): say so, restart
 * it, and give up on one that keeps dying (its log says why). Without this a dead dialer left every
 * broadcast "running" with nobody dialling.
 */
function superviseServices(stack: Stack, logDir: string, err: NodeJS.WritableStream): { stop(): void } {
  const restarts = new Map<string, number[]>();
  const busy = new Set<string>();
  const timer = setInterval(() => {
    for (const service of Object.values(stack.services).flat()) {
      if (service.running() || busy.has(service.name)) continue;
      const now = Date.now();
      const recent = (restarts.get(service.name) ?? []).filter((at) => now - at < RESTART_WINDOW_MS);
      if (recent.length >= RESTARTS_PER_WINDOW) {
        if (recent.length === RESTARTS_PER_WINDOW) {
          err.write(`${service.name} keeps stopping (${RESTARTS_PER_WINDOW} restarts within a minute); not restarting it. See ${join(logDir, `${service.name}.log`)}\n`);
          restarts.set(service.name, [...recent, now]);
        }
        continue;
      }
      restarts.set(service.name, [...recent, now]);
      busy.add(service.name);
      err.write(`${service.name} stopped unexpectedly; restarting it (log: ${join(logDir, `${service.name}.log`)})\n`);
      service
        .restart()
        .then(() => err.write(`${service.name} is back\n`))
        .catch((error: unknown) => err.write(`${service.name} could not be restarted: ${(error as Error).message.split('\n')[0]}\n`))
        .finally(() => busy.delete(service.name));
    }
  }, 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
