import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@clarion/testkit';
import { attemptOf } from '../src/demo.js';
import { REPO_ROOT, SERVICE_NAMES, startStack, type Stack } from '../src/stack.js';

const BIN = join(REPO_ROOT, 'tools', 'clarion', 'dist', 'bin.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built CLI as a user would; `env` replaces the environment (no inherited CLARION_*). */
function clarion(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, cwd, timeout: 170_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const json = <T>(run: Run): T => {
  expect(run.stderr, run.stderr).not.toMatch(/at .*\.js:\d+/); // no stack traces
  return JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as T;
};

/** Fictional numbers: +1 NXX 555-01xx; last digit 0-3 answer and confirm in voice-sim. */
const LIST_NUMBERS = ['202', '312', '617'].flatMap((area) => Array.from({ length: 10 }, (_, i) => `+1${area}55501${String(i).padStart(2, '0')}`));

/** A signed dev stack and the runtime file `npm start` writes, which the CLI finds through CLARION_RUNTIME_FILE. */
async function startCliStack(seed: string): Promise<{ stack: Stack; dir: string; env: Record<string, string> }> {
  const dir = mkdtempSync(join(tmpdir(), `clarion-${seed}-`));
  const stack = await startStack({ stateDir: join(dir, 'state'), accountCps: 30, timeScale: 0.02, signed: true, logLevel: 'warn', seed });
  const runtimeFile = join(dir, 'runtime.json');
  writeFileSync(
    runtimeFile,
    JSON.stringify({ natsUrl: stack.natsUrl, apiToken: stack.secrets.apiToken, urls: Object.fromEntries(SERVICE_NAMES.map((n) => [n, stack.url(n)])) }),
  );
  return { stack, dir, env: { CLARION_RUNTIME_FILE: runtimeFile } };
}

describe('the clarion CLI against a running stack', () => {
  let stack: Stack;
  let dir: string;
  let runtimeEnv: Record<string, string>;

  beforeAll(async () => {
    ({ stack, dir, env: runtimeEnv } = await startCliStack('cli'));
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('documents its commands and exit codes; bad usage exits 2', async () => {
    const help = await clarion(['help'], {}, dir);
    expect(help.code).toBe(0);
    for (const word of ['lists create', 'import', 'suppressions add', 'send', 'watch', 'pause', 'resume', 'cancel', 'report', 'export', 'Exit codes', 'CLARION_API_TOKEN']) {
      expect(help.stdout).toContain(word);
    }
    const unknown = await clarion(['frobnicate'], {}, dir);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const badFlag = await clarion(['lists', 'list', '--nope'], runtimeEnv, dir);
    expect(badFlag.code).toBe(2);
  });

  it('says how to connect (exit 3) when it has no settings, and exit 3 on a refused token', async () => {
    const none = await clarion(['lists', 'list'], { CLARION_RUNTIME_FILE: join(dir, 'missing.json') }, dir);
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('CLARION_RUNTIME_FILE');
    const flagsOnly = await clarion(['report', '--reporter-url', stack.url('reporter'), '--token', 'not-the-token'], { CLARION_RUNTIME_FILE: join(dir, 'missing.json') }, dir);
    expect(flagsOnly.code).toBe(3);
    // The reporter's URL given as the contacts service's: the error says which URL and what it expected.
    const wrong = await clarion(['lists', 'list', '--contacts-url', stack.url('reporter')], runtimeEnv, dir);
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toContain(`no route for GET /v1/lists (HTTP 404) at contacts at ${stack.url('reporter')}: is that URL the contacts service?`);
  });

  it('creates a list, imports a file, suppresses a number, sends, watches to the end and exports', async () => {
    // Flags and environment alone (no runtime file) are enough.
    const env = {
      CLARION_NATS_URL: stack.natsUrl,
      CLARION_API_TOKEN: stack.secrets.apiToken,
      CLARION_CONTACTS_URL: stack.url('contacts'),
      CLARION_REPORTER_URL: stack.url('reporter'),
    };
    const list = json<{ id: string }>(await clarion(['lists', 'create', 'CLI residents', '--json'], env, dir));
    expect(list.id).toMatch(/^l-/);

    const csvFile = join(dir, 'residents.csv');
    const rows = LIST_NUMBERS.map((n, i) => `Resident ${i},(${n.slice(2, 5)}) ${n.slice(5, 8)}-${n.slice(8)}${i === 1 ? ' ext 5' : ''}`);
    // Lines: header 1, residents 2-16, a blank line 17, residents 18-32, an empty row 33, then 34 and 35.
    writeFileSync(csvFile, ['Name,Phone', ...rows.slice(0, 15), '', ...rows.slice(15), ',', 'Nobody,not a number', `Again,${LIST_NUMBERS[0]}`].join('\n'));
    const imported = await clarion(['import', list.id, csvFile, '--country', 'US'], env, dir);
    // Invalid rows were left out: exit 1 (the rest is imported and the report lists them).
    expect(imported.code, imported.stderr).toBe(1);
    expect(imported.stdout).toMatch(/rows read\s+32/);
    expect(imported.stdout).toMatch(/imported\s+30/);
    expect(imported.stdout).toMatch(/invalid\s+1/);
    // "row N" is line N of the file as an editor shows it.
    expect(imported.stdout).toMatch(/row 34: phone number contains letters/);
    expect(imported.stdout).toMatch(/row 35 repeats row 2/);
    // The extension is reported, not silently dropped; the main number is imported.
    expect(imported.stdout).toMatch(/extension dropped\s+1/);
    expect(imported.stdout).toMatch(/row 3: ext 5/);
    expect(imported.stderr).toContain('100%');
    const clean = join(dir, 'clean.csv');
    writeFileSync(clean, `Name,Phone\nExtra,${LIST_NUMBERS[0]}\n`);
    const again = await clarion(['import', list.id, clean, '--json'], env, dir);
    expect(again.code, again.stderr).toBe(0);
    expect(json<{ unchanged: number; invalidCount: number }>(again)).toMatchObject({ unchanged: 1, invalidCount: 0 });

    const suppressed = LIST_NUMBERS[5]!;
    const added = json<{ added: number }>(await clarion(['suppressions', 'add', suppressed, '--reason', 'asked', '--json'], env, dir));
    expect(added.added).toBe(1);
    expect((await clarion(['suppressions', 'list'], env, dir)).stdout).toContain(suppressed);
    // Removal from the CLI too (fresh-user finding: only REST could): callable again, a second removal exits 4.
    expect((await clarion(['suppressions', 'add', '+1 415 555 0199'], env, dir)).code).toBe(0);
    const removed = await clarion(['suppressions', 'remove', '+14155550199'], env, dir);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('Removed +14155550199');
    expect((await clarion(['suppressions', 'list'], env, dir)).stdout).not.toContain('+14155550199');
    const removedTwice = await clarion(['suppressions', 'remove', '+14155550199'], env, dir);
    expect(removedTwice.code).toBe(4);
    expect(removedTwice.stderr).toContain('+14155550199 is not suppressed');

    const requestFile = join(dir, 'broadcast.yaml');
    writeFileSync(
      requestFile,
      ['name: CLI flood warning', 'message:', '  text: "Hello {{name}}. Flood warning."', 'retry:', '  maxAttempts: 2', '  delaySeconds: 1', 'acknowledgement:', '  prompt: Press 1.'].join('\n'),
    );
    const sent = await clarion(['send', '-f', requestFile, '--list', list.id, '--cps', '30', '--watch', '--timeout', '150', '--json'], env, dir);
    expect(sent.code, sent.stderr).toBe(0);
    const summary = json<{ id: string; status: string; audience: number; pending: number; counts: Record<string, number>; done: boolean }>(sent);
    expect(summary.status).toBe('completed');
    expect(summary.audience).toBe(30);
    expect(summary.pending).toBe(0);
    expect(summary.counts.suppressed).toBe(1);
    expect(Object.values(summary.counts).reduce((a, b) => a + b, 0)).toBe(30);

    // voice-sim's ground truth: each of the 29 called once on attempt 1, the suppressed one never.
    const sim = (await (await fetch(`${stack.url('voice-sim')}/_sim/calls`)).json()) as { calls: { to: string; event_url: string }[] };
    const ours = sim.calls.filter((c) => attemptOf(c.event_url) && c.event_url.includes(`b=${summary.id}`));
    const first = ours.filter((c) => attemptOf(c.event_url)?.attempt === 1);
    expect(new Set(first.map((c) => c.to)).size).toBe(29);
    expect(first.length).toBe(29);
    expect(ours.some((c) => c.to === suppressed.slice(1))).toBe(false);

    const human = await clarion(['report', summary.id], env, dir);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`Broadcast ${summary.id} "CLI flood warning": completed`);
    expect(human.stdout).toMatch(/suppressed\s+1/);
    // Asked to press 1: a real confirmation rate.
    expect(human.stdout).toMatch(/confirmation rate\s+\d+(\.\d)?%/);

    // A completed broadcast is not relabelled: pause and cancel are refused and change nothing.
    for (const action of ['pause', 'cancel']) {
      const refused = await clarion([action, summary.id], env, dir);
      expect(refused.code, action).toBe(1);
      expect(refused.stderr).toContain(`${action} refused: broadcast ${summary.id} is completed`);
    }
    const after = json<{ status: string; lifecycle?: unknown[] }>(await clarion(['report', summary.id, '--json'], env, dir));
    expect(after.status).toBe('completed');
    expect(JSON.stringify(after.lifecycle ?? [])).not.toMatch(/paused|cancelled/);

    const out = join(dir, 'export.csv');
    const exported = await clarion(['export', summary.id, '--out', out], env, dir);
    expect(exported.code).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toContain('state');
    expect(lines.length).toBe(31);
    const toStdout = await clarion(['export', summary.id, '--type', 'attempts'], env, dir);
    expect(toStdout.stdout.trim().split('\n').length).toBe(ours.length + 1);
  }, 180_000);

  it('pauses, resumes and cancels; a cancelled broadcast still ends with every contact final', async () => {
    // Long rings so the calls are still in flight when the cancel arrives.
    await fetch(`${stack.url('voice-sim')}/_sim/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ overrides: [{ match: '1713555019?', outcome: 'no_answer', ringSec: 500 }] }),
    });
    const numbers = ['+17135550190', '+17135550191', '+17135550192'];
    const sent = json<{ ok: boolean; broadcastId: string }>(
      await clarion(['send', '--name', 'to cancel', '--text', 'Hello', ...numbers.flatMap((n) => ['--number', n]), '--retry-delay', '60', '--json'], runtimeEnv, dir),
    );
    expect(sent.ok).toBe(true);
    const id = sent.broadcastId;
    expect((await clarion(['pause', id, '--reason', 'checking | the list'], runtimeEnv, dir)).stdout).toContain(`Paused ${id}`);
    // The reason reaches the reporter: the summary (JSON and text) says why it is paused.
    const paused = await waitFor(
      async () => {
        const run = await clarion(['report', id, '--json'], runtimeEnv, dir);
        const s = run.code === 0 ? json<{ status: string; reason: string | null }>(run) : undefined;
        return s?.status === 'paused' ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, message: 'the reporter shows the pause' },
    );
    expect(paused.reason).toBe('checking | the list');
    expect((await clarion(['report', id], runtimeEnv, dir)).stdout).toContain(`: paused (checking | the list)`);
    expect((await clarion(['resume', id], runtimeEnv, dir)).code).toBe(0);
    const cancelled = await clarion(['cancel', id, '--reason', 'test over'], runtimeEnv, dir);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    const watched = await clarion(['watch', id, '--timeout', '150', '--json'], runtimeEnv, dir);
    expect(watched.code, watched.stderr).toBe(0);
    const summary = json<{ status: string; pending: number; final: number; reason: string; lifecycle: { type: string; reason: string | null }[] }>(watched);
    expect(summary.status).toBe('cancelled');
    expect(summary.pending).toBe(0);
    expect(summary.final).toBe(3);
    expect(summary.reason).toBe('test over');
    expect(summary.lifecycle.map((e) => [e.type, e.reason])).toEqual([
      ['paused', 'checking | the list'],
      ['resumed', null],
      ['cancelled', 'test over'],
    ]);
    const report = await clarion(['report', id], runtimeEnv, dir);
    expect(report.stdout).toContain(': cancelled (test over)');
    expect(report.stdout).toMatch(/paused\s+checking \| the list/);
  }, 180_000);

  it('names each bad field of a broadcast (exit 2) and reports unknown ids (exit 4)', async () => {
    const bad = await clarion(['send', '--name', 'x', '--text', 'hi', '--number', '+12025550100', '--priority', 'urgent'], runtimeEnv, dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('priority');
    const missing = await clarion(['report', 'b-doesnotexist'], runtimeEnv, dir);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain('not found');
    const cancelMissing = await clarion(['cancel', 'b-doesnotexist'], runtimeEnv, dir);
    expect(cancelMissing.code).toBe(4);
    // A list that does not exist is "not found" too, as for `import`.
    const unknownList = await clarion(['send', '--name', 'x', '--text', 'hi', '--list', 'l-doesnotexist'], runtimeEnv, dir);
    expect(unknownList.code, unknownList.stderr).toBe(4);
    expect(unknownList.stderr).toContain('unknown list id: l-doesnotexist');
    const importMissing = await clarion(['import', 'l-doesnotexist', join(REPO_ROOT, 'tools', 'clarion', 'examples', 'contacts-demo.csv')], runtimeEnv, dir);
    expect(importMissing.code, importMissing.stderr).toBe(4);
  });

  it('watches through a retry delay: says how many retries wait and when, never gives up, shows n/a without acknowledgement', async () => {
    // Rings out every time: the contact waits out the retry delay, then is called again.
    await fetch(`${stack.url('voice-sim')}/_sim/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ overrides: [{ match: '13125550188', outcome: 'no_answer', ringSec: 1 }] }),
    });
    const sent = json<{ ok: boolean; broadcastId: string }>(
      await clarion(['send', '--name', 'retry wait', '--text', 'Hello', '--number', '+13125550188', '--number', '+13125550180', '--max-attempts', '2', '--retry-delay', '25', '--json'], runtimeEnv, dir),
    );
    expect(sent.ok).toBe(true);
    const id = sent.broadcastId;
    // No --timeout: it must follow the broadcast through the wait to the end (stderr is a pipe: plain lines).
    const watched = await clarion(['watch', id], runtimeEnv, dir);
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stderr).toMatch(/running {2}1\/2 final {2}\d+ calls {2}waiting for 1 retry, next at (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d/);
    expect(watched.stdout).toMatch(/: completed/);
    expect(watched.stdout).toMatch(/no_answer\s+1/);
    expect(watched.stdout).toMatch(/confirmation rate\s+n\/a/);
    const summary = json<{ done: boolean; attempts: number; acknowledgement: boolean; rates: { confirmationRate: number | null } }>(await clarion(['report', id, '--json'], runtimeEnv, dir));
    expect(summary).toMatchObject({ done: true, attempts: 3, acknowledgement: false, rates: { confirmationRate: null } });
  }, 180_000);
});

describe('what a fresh user tripped over (issue #8), against a running stack', () => {
  let stack: Stack;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    ({ stack, dir, env } = await startCliStack('cli-first-run'));
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('watch of an unknown id fails with exit 4 like report, instead of waiting for ever', async () => {
    // Without the fix this waits until execFile's own timeout kills it (code -1).
    const run = await new Promise<Run>((resolve) => {
      execFile(process.execPath, [BIN, 'watch', 'b-nope'], { env: { PATH: process.env.PATH ?? '', ...env }, cwd: dir, timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    });
    expect(run.code, run.stderr).toBe(4);
    expect(run.stderr).toContain('broadcast b-nope not found');
  }, 90_000);

  it('send with some invalid numbers keeps the broadcast, lists them as "number: reason" and exits 1 like import', async () => {
    const run = await clarion(['send', '--name', 'partly invalid', '--text', 'Hello', '--number', '+12025550121', '--number', '020 7946 0002'], env, dir);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/Broadcast b-\S+ created/);
    expect(run.stdout).toMatch(/accepted\s+1/);
    expect(run.stdout).toContain('\n  020 7946 0002: impossible number for US (no country given; read as US)\n');
    expect(run.stdout).not.toContain('{"input"');
  });

  it('a cancelled broadcast shows contacts waiting to be closed as cancelled, not retries (watch and report)', async () => {
    await fetch(`${stack.url('voice-sim')}/_sim/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ overrides: [{ match: '1469555017?', outcome: 'no_answer', ringSec: 1 }] }),
    });
    const numbers = ['+14695550170', '+14695550171'];
    const sent = json<{ ok: boolean; broadcastId: string }>(
      await clarion(['send', '--name', 'cancel while waiting', '--text', 'Hello', ...numbers.flatMap((n) => ['--number', n]), '--max-attempts', '2', '--retry-delay', '600', '--json'], env, dir),
    );
    const id = sent.broadcastId;
    await waitFor(
      async () => {
        const run = await clarion(['report', id, '--json'], env, dir);
        return run.code === 0 && json<{ retries: { waiting: number } }>(run).retries.waiting === 2 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, message: 'both contacts wait for a retry' },
    );
    const before = await clarion(['report', id], env, dir);
    expect(before.stdout).toMatch(/retries\s+waiting for 2 retries, next at /);
    expect((await clarion(['cancel', id, '--reason', 'all clear'], env, dir)).code).toBe(0);
    const report = await waitFor(
      async () => {
        const run = await clarion(['report', id], env, dir);
        return run.stdout.includes(': cancelled') ? run : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, message: 'the reporter shows the cancel' },
    );
    expect(report.stdout).toMatch(/closing\s+2 contacts waiting to be closed as cancelled/);
    expect(report.stdout).not.toMatch(/next at|retries/);
    const watched = await clarion(['watch', id, '--timeout', '2'], env, dir);
    expect(watched.stderr).toContain('2 contacts waiting to be closed as cancelled');
    expect(watched.stderr).not.toContain('next at');
  }, 180_000);

  it('Ctrl-C during watch says the broadcast keeps running and exits 130', async () => {
    await fetch(`${stack.url('voice-sim')}/_sim/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ overrides: [{ match: '1469555018?', outcome: 'no_answer', ringSec: 500 }] }),
    });
    const sent = json<{ broadcastId: string }>(await clarion(['send', '--name', 'long', '--text', 'Hello', '--number', '+14695550180', '--max-attempts', '1', '--json'], env, dir));
    const id = sent.broadcastId;
    const child = spawn(process.execPath, [BIN, 'watch', id], { env: { PATH: process.env.PATH ?? '', ...env }, cwd: dir });
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor(() => err.includes(id), { timeoutMs: 60_000, intervalMs: 100, message: 'watch draws its first line' });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(err).toContain(`stopped watching; broadcast ${id} keeps running (clarion cancel ${id} to stop it)`);
    await clarion(['cancel', id], env, dir);
  }, 120_000);
});

describe('docs/asyncapi.yaml', () => {
  it('is what `clarion asyncapi` prints from the contracts, and names every subject of ARCHITECTURE.md', async () => {
    const run = await clarion(['asyncapi'], {}, REPO_ROOT);
    expect(run.code).toBe(0);
    expect(readFileSync(join(REPO_ROOT, 'docs', 'asyncapi.yaml'), 'utf8'), 'run `npx clarion asyncapi > docs/asyncapi.yaml`').toBe(run.stdout);
    const architecture = readFileSync(join(REPO_ROOT, 'ARCHITECTURE.md'), 'utf8');
    const subjects = [...architecture.matchAll(/^\| `([a-z.<>]+)` \|/gm)].map((m) => m[1]!.replace('<bid>', '{broadcastId}'));
    expect(subjects.length).toBeGreaterThanOrEqual(10);
    for (const subject of subjects) expect(run.stdout).toContain(`address: ${subject}`);
  });
});
