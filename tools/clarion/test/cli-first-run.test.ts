import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@clarion/nats';
import { REPO_ROOT } from '../src/stack.js';
import { ensureDevSecrets, newApiToken } from '../src/secrets.js';
import { clockTime, renderLive, renderSummary, retryNote, type Summary } from '../src/commands/broadcast.js';

// What a fresh user tripped over (issue #8) that needs no running Clarion.

const BIN = join(REPO_ROOT, 'tools', 'clarion', 'dist', 'bin.js');
const dir = mkdtempSync(join(tmpdir(), 'clarion-first-run-'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built CLI with a bare environment; a hang ends at `timeout` with code -1. */
function clarion(args: string[], env: Record<string, string> = {}, timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, cwd: dir, timeout }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('commands over NATS when Clarion is not running', () => {
  it('send and pause fail with exit 3 and say NATS cannot be reached (a stale runtime.json, or --nats)', async () => {
    // A runtime.json left by a stopped `npm start`: its NATS port has nobody listening any more.
    const port = await freePort();
    const runtimeFile = join(dir, 'stale-runtime.json');
    writeFileSync(runtimeFile, JSON.stringify({ natsUrl: `nats://127.0.0.1:${port}`, apiToken: 'stale', urls: {} }));
    const env = { CLARION_RUNTIME_FILE: runtimeFile };
    const runs = await Promise.all([
      clarion(['send', '--name', 'x', '--text', 'hi', '--number', '+12025550101'], env),
      clarion(['pause', 'b-1'], env),
      clarion(['send', '--name', 'x', '--text', 'hi', '--number', '+12025550101', '--nats', `nats://127.0.0.1:${port}`, '--json']),
    ]);
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toContain(`cannot reach NATS at nats://127.0.0.1:${port}`);
      expect(run.stderr).toContain('is Clarion running?');
      expect(run.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
    }
  }, 120_000);
});

describe('send refuses an audience where nobody can be called', () => {
  it('exits 1 without sending when every inline number is invalid, listing each as "number: reason"', async () => {
    // No NATS at all: the check comes before anything is sent.
    const run = await clarion(['send', '--name', 'x', '--text', 'hi', '--number', '020 7946 0002', '--number', 'not a number'], { CLARION_RUNTIME_FILE: join(dir, 'none.json') });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain('nobody would be called: all 2 numbers are invalid; no broadcast was created');
    expect(run.stderr).toContain('\n  020 7946 0002: impossible number for US (no country given; read as US)\n');
    expect(run.stderr).not.toContain('{"input"');
    const json = await clarion(['send', '--name', 'x', '--text', 'hi', '--number', '020 7946 0002', '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, error: { code: 'no_audience' }, invalid: [{ input: '020 7946 0002' }] });
  }, 120_000);
});

describe('help and values that start with "-"', () => {
  it('`send --help` prints the usage of send only, with the common options and how to write --token=…', async () => {
    const run = await clarion(['send', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: clarion send /);
    expect(run.stdout).toContain('--retry-delay');
    expect(run.stdout).toContain('--token=');
    expect(run.stdout).not.toContain('lists create');
    expect((await clarion(['help'])).stdout).toContain('--token=VALUE');
  });

  it('--retry-delay -5 says how to write it; --retry-delay=-5 says it must be a positive number', async () => {
    const args = ['send', '--name', 'x', '--text', 'hi', '--number', '+12025550101'];
    const spaced = await clarion([...args, '--retry-delay', '-5']);
    expect(spaced.code).toBe(2);
    expect(spaced.stderr).toMatch(/^clarion: --retry-delay -5: a value that starts with '-' is read as an option; write --retry-delay=-5\n/);
    const joined = await clarion([...args, '--retry-delay=-5']);
    expect(joined.code).toBe(2);
    expect(joined.stderr).toMatch(/^clarion: --retry-delay must be a positive number \(or 0\), got "-5"\n/);
    // The token is not echoed back.
    const token = await clarion(['report', '--token', '-abcdef']);
    expect(token.code).toBe(2);
    expect(token.stderr).toContain('write --token=<token>');
    expect(token.stderr).not.toContain('abcdef');
  });

  it('generated API tokens never start with "-", and an old one that does is replaced', () => {
    for (let i = 0; i < 500; i += 1) expect(newApiToken()).not.toMatch(/^-/);
    const secretsDir = join(dir, 'secrets');
    mkdirSync(secretsDir);
    const first = ensureDevSecrets(secretsDir);
    expect(first.apiToken).not.toMatch(/^-/);
    const file = join(secretsDir, 'dev-secrets.json');
    writeFileSync(file, JSON.stringify({ ...first, apiToken: '-old-token' }));
    const repaired = ensureDevSecrets(secretsDir);
    expect(repaired.apiToken).not.toMatch(/^-/);
    expect(repaired.applicationId).toBe(first.applicationId);
    expect((JSON.parse(readFileSync(file, 'utf8')) as { apiToken: string }).apiToken).toBe(repaired.apiToken);
    expect(ensureDevSecrets(secretsDir).apiToken).toBe(repaired.apiToken);
  });
});

describe('retry notes and times in human output', () => {
  const now = new Date('2026-12-03T14:00:00.000Z');
  const base: Summary = {
    id: 'b-1',
    name: 'Flood',
    status: 'running',
    reason: null,
    lifecycle: [],
    acknowledgement: true,
    audience: 5,
    counts: { answered: 2, waiting_retry: 3 },
    pending: 3,
    final: 2,
    done: false,
    attempts: 5,
    timings: { createdAt: '2026-12-03T13:00:00.000Z', firstCallAt: '2026-12-03T13:00:01.000Z', lastCallAt: '2026-12-03T13:00:05.000Z', completedAt: null },
    rates: { callsPerMinute: 1, answerRate: 0.4, confirmationRate: 0 },
    retries: { waiting: 3, nextAt: '2026-12-03T14:05:00.000Z', lastAt: '2026-12-03T14:06:00.000Z' },
    eta: '2026-12-03T14:06:00.000Z',
  };
  const tz = process.env.TZ;
  afterEach(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  it('says "due now" once the next retry time has passed', () => {
    process.env.TZ = 'UTC';
    expect(retryNote(base, now)).toBe('waiting for 3 retries, next at 14:05:00 UTC');
    expect(retryNote({ ...base, retries: { waiting: 3, nextAt: '2026-12-03T13:59:00.000Z', lastAt: null } }, now)).toBe('waiting for 3 retries, due now');
  });

  it('a cancelled or expired broadcast has contacts waiting to be closed, not retries', () => {
    const cancelled = { ...base, status: 'cancelled', reason: 'all clear', eta: null };
    expect(retryNote(cancelled, now)).toBe('3 contacts waiting to be closed as cancelled');
    expect(renderLive(cancelled, now)[0]).toContain('3 contacts waiting to be closed as cancelled');
    const text = renderSummary(cancelled, now);
    expect(text).toMatch(/closing\s+3 contacts waiting to be closed as cancelled/);
    expect(text).not.toMatch(/retries|next at/);
    const expired = { ...base, lifecycle: [{ at: '2026-12-03T13:30:00.000Z', type: 'expired', reason: null }] };
    expect(retryNote(expired, now)).toBe('3 contacts waiting to be closed (the broadcast expired)');
  });

  it('shows local time with its zone everywhere in human output (TZ set), ISO only in JSON', () => {
    process.env.TZ = 'Europe/Paris';
    const text = renderSummary({ ...base, lifecycle: [{ at: '2026-12-03T13:10:00.000Z', type: 'paused', reason: 'check' }] }, now);
    // The zone's short name as ICU gives it (CET, or GMT+1 with less locale data).
    const zone = '(CET|GMT\\+1)';
    expect(text).toMatch(new RegExp(`started\\s+2026-12-03 14:00:01 ${zone}\\n`));
    expect(text).toMatch(new RegExp(`expected end\\s+2026-12-03 15:06:00 ${zone}\\n`));
    expect(text).toMatch(new RegExp(`2026-12-03 14:10:00 ${zone}  paused`));
    expect(text).not.toMatch(/\d\dZ/);
    expect(clockTime('2026-12-03T14:05:00.000Z', now)).toMatch(new RegExp(`^15:05:00 ${zone}$`));
    expect(renderLive(base, now)[0]).toMatch(new RegExp(`next at 15:05:00 ${zone}`));
  });
});
