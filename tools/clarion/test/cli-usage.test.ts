import { afterAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@clarion/testkit';
import { REPO_ROOT } from '../src/stack.js';
import { renderProgress } from '../src/render.js';
import { renderLive, type Summary } from '../src/commands/broadcast.js';

const BIN = join(REPO_ROOT, 'tools', 'clarion', 'dist', 'bin.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built CLI as a user would, with a bare environment (stderr is a pipe, not a TTY). */
function clarion(args: string[], env: Record<string, string> = {}, timeout = 200_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, cwd: dir, timeout }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A usage error: one "clarion: …" line naming the problem, then the command's usage; no stack trace. */
function expectUsage(run: Run, problem: RegExp, command: string): void {
  expect(run.code, run.stderr).toBe(2);
  // Progress lines may come first (the demo's startup); the problem is one line, then a blank line.
  const lines = run.stderr.split('\n');
  const at = lines.findIndex((line) => line.startsWith('clarion: '));
  expect(lines.filter((line) => line.startsWith('clarion: ')).length, run.stderr).toBe(1);
  expect(lines[at]).toMatch(problem);
  expect(lines[at + 1]).toBe('');
  expect(run.stderr).toContain(`Usage: clarion ${command}`);
  expect(run.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
}

const dir = mkdtempSync(join(tmpdir(), 'clarion-cli-usage-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('usage errors exit 2 with one line and the usage, before anything starts', () => {
  it('start rejects bad flags without creating its state folder', async () => {
    const stateDir = join(dir, 'never');
    expectUsage(await clarion(['start', '--state-dir', stateDir, '--cps', '0']), /--cps must be a positive number, got "0"/, 'start');
    expectUsage(await clarion(['start', '--state-dir', stateDir, '--time-scale', '-1']), /--time-scale/, 'start');
    expectUsage(await clarion(['start', '--state-dir', stateDir, '--time-scale=-1']), /--time-scale must be a positive number/, 'start');
    expectUsage(await clarion(['start', '--state-dir', stateDir, '--cps', 'fast']), /--cps must be a positive number/, 'start');
    expect(existsSync(stateDir)).toBe(false);
  });

  it('names unknown flags, missing values and bad numbers in every command', async () => {
    expectUsage(await clarion(['lists', 'list', '--nope']), /Unknown option '--nope'/, 'lists');
    expectUsage(await clarion(['report', '--limit']), /--limit/, 'report');
    expectUsage(await clarion(['watch', 'b-1', '--timeout', 'soon']), /--timeout must be a positive number/, 'watch');
    expectUsage(await clarion(['send', '--name', 'x', '--text', 'hi', '--number', '+12025550100', '--repeat', 'twice']), /--repeat must be a number/, 'send');
    expectUsage(await clarion(['send', '--name', 'x', '--text', 'hi', '--number', '+12025550100', '--country', 'XX']), /--country "XX"/, 'send');
    expectUsage(await clarion(['import', 'l-1', join(dir, 'missing.csv')]), /cannot read .*missing\.csv: ENOENT/, 'import');
    expectUsage(await clarion(['import', 'l-1', join(dir, 'missing.csv'), '--map', 'colour=Hue']), /--map takes FIELD=HEADER/, 'import');
    expectUsage(await clarion(['demo', '--bogus']), /Unknown option '--bogus'/, 'demo');
  });

  it('demo: a bad country or a missing file is a usage error; an empty or header-only file has no contacts (exit 1)', async () => {
    expectUsage(await clarion(['demo', '--country', 'XX']), /--country "XX" is not a country/, 'demo');
    expectUsage(await clarion(['demo', '--csv', join(dir, 'nowhere.csv')]), /cannot read .*nowhere\.csv: ENOENT/, 'demo');
    const empty = join(dir, 'empty.csv');
    writeFileSync(empty, '');
    const headerOnly = join(dir, 'header.csv');
    writeFileSync(headerOnly, '\uFEFFName,Phone\r\n\r\n');
    for (const file of [empty, headerOnly]) {
      const run = await clarion(['demo', '--csv', file]);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr.trim()).toBe(`clarion: no contacts in ${file}`);
      expect(run.stdout).not.toContain('OK');
    }
  });
});

describe('clarion start holds a lock on its state folder', () => {
  it('replaces a stale lock, refuses a second start (exit 3) and removes the lock on exit', async () => {
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { recursive: true });
    const lockFile = join(stateDir, 'clarion.pid');
    // A pid that existed and is gone: a lock left by a killed `start`.
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => gone.once('exit', resolve));
    writeFileSync(lockFile, JSON.stringify({ pid: gone.pid, natsUrl: 'nats://127.0.0.1:1' }));

    const first = spawn(process.execPath, [BIN, 'start', '--state-dir', stateDir, '--cps', '30', '--time-scale', '0.02'], {
      env: { PATH: process.env.PATH ?? '' },
      cwd: dir,
    });
    children.push(first);
    let out = '';
    let err = '';
    first.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    first.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => first.once('exit', (code) => resolve(code)));
    await waitFor(() => out.includes('Press Ctrl-C to stop.') || first.exitCode !== null, { timeoutMs: 120_000, intervalMs: 100 });
    expect(out, err).toContain('Clarion is running.');
    const natsUrl = /NATS\s+(nats:\/\/\S+)/.exec(out)?.[1];
    expect(natsUrl).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toEqual({ pid: first.pid, natsUrl });
    const runtime = JSON.parse(readFileSync(join(stateDir, 'runtime.json'), 'utf8')) as { natsUrl: string };
    expect(runtime.natsUrl).toBe(natsUrl);

    const second = await clarion(['start', '--state-dir', stateDir, '--cps', '30']);
    expect(second.code, second.stderr).toBe(3);
    expect(second.stderr).toContain(`Clarion is already running here (pid ${first.pid}, NATS ${natsUrl}); stop it first`);
    expect(second.stdout).not.toContain('Clarion is running.');

    // The CLI reaches this system through its runtime.json; a file with no phone column names the flag.
    const env = { CLARION_RUNTIME_FILE: join(stateDir, 'runtime.json') };
    const list = await clarion(['lists', 'create', 'Usage test', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    const listId = (JSON.parse(list.stdout) as { id: string }).id;
    const csv = join(dir, 'digits.csv');
    writeFileSync(csv, 'Who,Digits\nAda,+12025550101\nBob,+12025550102\n');
    const noPhone = await clarion(['import', listId, csv], env);
    expectUsage(noPhone, /no phone column found.*--map-phone HEADER/, 'import');
    expect(noPhone.stderr).toContain('Digits');
    const mapped = await clarion(['import', listId, csv, '--map-phone', 'Digits', '--map', 'name=Who', '--json'], env);
    expect(mapped.code, mapped.stderr).toBe(0);
    expect(JSON.parse(mapped.stdout)).toMatchObject({ rowsRead: 2, imported: 2 });
    // A header-only file imports nothing: said, and exit 1 (as `demo` does), not a quiet success.
    const empty = join(dir, 'header-only.csv');
    writeFileSync(empty, 'name,phone\n');
    const none = await clarion(['import', listId, empty], env);
    expect(none.code, none.stderr).toBe(1);
    expect(none.stderr).toContain('no contacts in header-only.csv: nothing imported');

    // A service that dies (kill -9) is noticed and brought back, and keeps serving.
    const dialerPid = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(first.pid)], { encoding: 'utf8' })
      .split('\n')
      .find((line) => line.includes(join('services', 'dialer', 'dist', 'main.js')))
      ?.trim()
      .split(/\s+/)[0];
    expect(dialerPid, 'the dialer is a child of start').toMatch(/^\d+$/);
    process.kill(Number(dialerPid), 'SIGKILL');
    await waitFor(() => err.includes('dialer is back'), { timeoutMs: 60_000, intervalMs: 100, message: `dialer restarted\n${err}` });
    expect(err).toContain('dialer stopped unexpectedly; restarting it');
    const runtimeUrls = (JSON.parse(readFileSync(join(stateDir, 'runtime.json'), 'utf8')) as { urls: Record<string, string> }).urls;
    expect((await fetch(`${runtimeUrls.dialer}/readyz`)).status).toBe(200);

    first.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(lockFile)).toBe(false);
  }, 240_000);
});

describe('clarion demo on a small file, stderr not a terminal', () => {
  it('prints plain progress lines, a readable broadcast line, and lists invalid rows and flagged numbers', async () => {
    const csv = join(dir, 'small.csv');
    writeFileSync(
      csv,
      ['Name,Digits,Site', 'Ada,(202) 555-0100,HQ', 'Bob,+1 312 555 0101,HQ', 'Cy,not a number,HQ', 'Di,+44 7700 900123,Depot', 'Ed,+1 617 555 0102,HQ'].join('\n'),
    );
    const noPhone = await clarion(['demo', '--csv', csv, '--cps', '30']);
    expectUsage(noPhone, /cannot import .*no phone column found.*--map-phone HEADER/, 'demo');

    const run = await clarion(['demo', '--csv', csv, '--map-phone', 'Digits', '--cps', '30', '--time-scale', '0.02', '--timeout', '150']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stderr).not.toContain('\x1b[');
    expect(run.stderr).not.toContain('\r');
    expect(run.stderr).not.toMatch(/-?\d+\/null/);
    expect(run.stderr).toMatch(/Broadcast b-\S+: 4 contacts to call \(0 more invalid, 0 more duplicates, 0 suppressed\)/);
    expect(run.stderr).toMatch(/4\/4 final/);
    expect(run.stdout).toMatch(/flagged\s+1/);
    // "row 4" is line 4 of the file (the header is line 1).
    expect(run.stdout).toMatch(/row 4: phone number contains letters/);
    expect(run.stdout).toContain('OK: every accepted contact reached a final state.');

    const json = await clarion(['demo', '--csv', csv, '--map-phone', 'Digits', '--cps', '30', '--time-scale', '0.02', '--timeout', '150', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const summary = JSON.parse(json.stdout.trim()) as { flagged: number; invalidRows: { row: number; reason: string }[]; audience: { accepted: number } };
    expect(summary.audience.accepted).toBe(4);
    expect(summary.flagged).toBe(1);
    expect(summary.invalidRows).toEqual([{ row: 4, reason: expect.stringMatching(/contains letters/) }]);
  }, 400_000);
});

describe('progress before the reporter knows the audience', () => {
  it('says "waiting for the audience…" instead of a negative count over null', () => {
    const early = { id: 'b-1', status: 'running', audience: null, counts: {}, pending: 221 };
    expect(renderProgress(early)).toBe('b-1  running  waiting for the audience…');
    expect(renderProgress({ ...early, audience: 221, pending: 200, counts: { answered: 21 } })).toMatch(/^\S+ 21\/221 final  answered 21$/);
    const live = { ...early, final: 0, done: false, attempts: 0, eta: null } as unknown as Summary;
    expect(renderLive(live)).toEqual(['b-1  running  waiting for the audience…']);
  });
});
