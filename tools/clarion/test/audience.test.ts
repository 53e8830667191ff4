import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FINAL_STATES } from '@clarion/contracts';
import { waitFor } from '@clarion/testkit';
import type { NatsConnection } from '@clarion/nats';
import { startStack, type Stack } from '../src/stack.js';
import { connect, requestBroadcast, restClient } from '../src/client.js';
import { fictionalNumbers } from '../src/fixtures.js';

interface Summary {
  status: string;
  audience: number;
  pending: number;
  counts: Record<string, number>;
}
interface SimCall {
  to: string;
}
interface ImportReport {
  imported: number;
  unchanged: number;
  duplicateCount: number;
  invalidCount: number;
}

/** National-format US spelling of an E.164 +1 number, as spreadsheets hold them. */
const usNational = (e164: string) => `(${e164.slice(2, 5)}) ${e164.slice(5, 8)}-${e164.slice(8)}`;
const csvOf = (numbers: string[]) => ['Name,Phone', ...numbers.map((n, i) => `Person ${i},"${usNational(n)}"`)].join('\r\n');

describe('audiences built from overlapping lists, suppressions and messy spellings', () => {
  let stack: Stack;
  let nc: NatsConnection;
  let stateDir: string;
  let contacts: ReturnType<typeof restClient>;
  let reporter: ReturnType<typeof restClient>;

  const simCalls = async () => ((await (await fetch(`${stack.url('voice-sim')}/_sim/calls`)).json()) as { calls: SimCall[] }).calls;
  const completed = (broadcastId: string) =>
    waitFor(
      async () => {
        const s = await reporter.get<Summary>(`/v1/broadcasts/${broadcastId}`);
        return s.status === 'completed' ? s : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 250, message: `broadcast ${broadcastId} completed` },
    );

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'clarion-audience-'));
    stack = await startStack({ stateDir, accountCps: 100, timeScale: 0.01, logLevel: 'warn', seed: 'audience' });
    nc = await connect(stack.natsUrl, 'audience-test');
    contacts = restClient(stack.url('contacts'), stack.secrets.apiToken);
    reporter = restClient(stack.url('reporter'), stack.secrets.apiToken);
  });

  afterAll(async () => {
    await nc?.close();
    await stack?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('calls each number of two lists sharing 30% once, and nobody suppressed', async () => {
    // 400 fictional numbers: list A = 0..199, list B = 140..339 (60 shared = 30% of each list).
    const all = fictionalNumbers(340);
    const listA = all.slice(0, 200);
    const listB = all.slice(140, 340);
    const shared = all.slice(140, 200);
    // 5% of the 340 distinct numbers suppressed (17), spread so some are shared between the lists.
    const suppressed = all.filter((_, i) => i % 20 === 7);
    expect(suppressed).toHaveLength(17);
    expect(suppressed.some((n) => shared.includes(n))).toBe(true);

    const a = await contacts.post<{ id: string }>('/v1/lists', { name: 'audience A' });
    const b = await contacts.post<{ id: string }>('/v1/lists', { name: 'audience B' });
    expect((await contacts.post<ImportReport>(`/v1/lists/${a.id}/import?defaultCountry=US`, csvOf(listA), 'text/csv')).imported).toBe(200);
    expect((await contacts.post<ImportReport>(`/v1/lists/${b.id}/import?defaultCountry=US`, csvOf(listB), 'text/csv')).imported).toBe(200);
    // National spellings, as an operator would paste them.
    const added = await contacts.post<{ added: number }>('/v1/suppressions', { numbers: suppressed.map(usNational), country: 'US' });
    expect(added.added).toBe(17);

    const reply = await requestBroadcast(nc, {
      name: 'overlapping lists',
      message: { text: 'Hello {{name}}, this is a test alert.' },
      audience: { listIds: [a.id, b.id] },
      retry: { maxAttempts: 1 },
      pacing: { callsPerSecond: 100 },
    });
    if (!reply.ok) throw new Error(reply.error.message);
    // 400 list entries: 60 are the second sight of a shared number, 17 distinct numbers are suppressed.
    expect(reply.counts).toEqual({ accepted: 323, invalid: 0, duplicate: 60, suppressed: 17 });

    const summary = await completed(reply.broadcastId);
    expect(summary.audience).toBe(400);
    expect(summary.pending).toBe(0);
    expect(FINAL_STATES.reduce((sum, state) => sum + (summary.counts[state] ?? 0), 0)).toBe(400);
    expect(summary.counts.duplicate).toBe(60);
    expect(summary.counts.suppressed).toBe(17);

    // Ground truth: every remaining number called exactly once, no suppressed number called at all.
    const calls = await simCalls();
    const perNumber = new Map<string, number>();
    for (const call of calls) perNumber.set(`+${call.to}`, (perNumber.get(`+${call.to}`) ?? 0) + 1);
    const expected = all.filter((n) => !suppressed.includes(n));
    expect(calls).toHaveLength(323);
    expect([...perNumber.keys()].sort()).toEqual([...expected].sort());
    expect([...perNumber.values()].every((count) => count === 1)).toBe(true);
  });

  it('makes one contact and one call of four spellings of the same UK number', async () => {
    const spellings = ['+44 20 7946 0123', '020 7946 0123', '0044 20 7946 0123', '442079460123'];
    const csv = ['Name,Phone,Country', ...spellings.map((s, i) => `Same Person ${i},${s},GB`)].join('\n');
    const list = await contacts.post<{ id: string }>('/v1/lists', { name: 'same person' });
    const first = await contacts.post<ImportReport>(`/v1/lists/${list.id}/import`, csv, 'text/csv');
    expect(first).toMatchObject({ imported: 1, duplicateCount: 3, invalidCount: 0 });
    const again = await contacts.post<ImportReport>(`/v1/lists/${list.id}/import`, csv, 'text/csv');
    expect(again).toMatchObject({ imported: 0, unchanged: 1, duplicateCount: 3 });

    const before = (await simCalls()).filter((c) => c.to === '442079460123').length;
    const reply = await requestBroadcast(nc, {
      name: 'same person',
      message: { text: 'Hello {{name}}.' },
      // The list and the same four spellings inline: still one person.
      audience: { listIds: [list.id], numbers: spellings, defaultCountry: 'GB' },
      retry: { maxAttempts: 1 },
    });
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.counts).toEqual({ accepted: 1, invalid: 0, duplicate: 4, suppressed: 0 });
    const summary = await completed(reply.broadcastId);
    expect(summary.audience).toBe(5);
    expect(summary.pending).toBe(0);
    const calls = (await simCalls()).filter((c) => c.to === '442079460123');
    expect(calls.length - before).toBe(1);
  });
});
