import { describe, expect, it } from 'vitest';
import { FINAL_STATES } from '@clarion/contracts';
import { waitFor } from '@clarion/testkit';
import type { NatsConnection } from '@clarion/nats';
import type { Stack } from '../src/stack.js';
import { useStack } from './stack-support.js';
import { attemptOf } from '../src/demo.js';
import { controlBroadcast, requestBroadcast } from '../src/client.js';
import { fictionalNumbers } from '../src/fixtures.js';
import {
  doubledAttempts,
  finalTotal,
  firstAttemptContacts,
  simCalls,
  simConfig,
  waitForSummary,
} from './dialer-support.js';

const CPS = 25;
const NUMBERS = fictionalNumbers(1000);

/** Three dialer processes sharing one account against voice-sim enforcing the same limit. */
describe('dialer: three replicas against voice-sim', () => {
  let stack: Stack;
  let nc: NatsConnection;
  useStack('dialer-replicas', {
    accountCps: CPS,
    simCps: CPS,
    timeScale: 0.01,
    dialerReplicas: 3,
    logLevel: 'warn',
    seed: 'dialer-replicas',
    env: { dialer: { BREAKER_COOLDOWN_MS: '600000' } },
  }, (suite) => ({ stack, nc } = suite));

  const broadcast = async (request: Record<string, unknown>) => {
    const reply = await requestBroadcast(nc, { message: { text: 'Test alert.' }, retry: { maxAttempts: 1 }, ...request });
    if (!reply.ok) throw new Error(reply.error.message);
    return reply;
  };

  // How close to the limit the provider sees the calls (429s, the busiest rolling second at voice-sim)
  // depends on the host's timing jitter: those figures are measured by `npm run bench -- pacing`.
  it('calls each contact exactly once across three replicas sharing the account rate', async () => {
    const audience = NUMBERS.slice(0, 250);
    const reply = await broadcast({ name: 'pacing', audience: { numbers: audience } });
    expect(reply.counts.accepted).toBe(250);
    const summary = await waitForSummary(stack, reply.broadcastId, (s) => s.status === 'completed');
    expect(finalTotal(summary, FINAL_STATES)).toBe(250);

    const calls = await simCalls(stack, reply.broadcastId);
    expect(doubledAttempts(calls)).toEqual([]);
    expect(firstAttemptContacts(calls).size).toBe(250);
    expect(new Set(calls.map((c) => `+${c.to}`))).toEqual(new Set(audience));
  });

  it('dials a critical broadcast ahead of a large normal one; pause, resume and cancel act on every replica', async () => {
    const normal = await broadcast({ name: 'large normal', audience: { numbers: NUMBERS.slice(0, 400) } });
    await waitFor(async () => (await simCalls(stack, normal.broadcastId)).length >= 40, { timeoutMs: 60_000, message: 'normal broadcast under way' });

    const criticalAudience = NUMBERS.slice(400, 430);
    const critical = await broadcast({ name: 'critical', priority: 'critical', audience: { numbers: criticalAudience } });
    await waitForSummary(stack, critical.broadcastId, (s) => s.status === 'completed', 60_000, 'critical completed');
    const criticalCalls = (await simCalls(stack, critical.broadcastId)).map((c) => Date.parse(c.created_at)).sort((a, b) => a - b);
    expect(criticalCalls).toHaveLength(30);
    const firstCritical = criticalCalls[0]!;
    const lastCritical = criticalCalls[criticalCalls.length - 1]!;
    // Once the critical broadcast's calls start, the normal one waits until they are all placed: only
    // requests the replicas had already paced slip in between (a few; more when the machine is loaded,
    // up to 14 seen in CI). Sharing without priority would interleave about one normal call per
    // critical call (~30), so more than half that many means the critical broadcast did not go first.
    const normalDuring = (await simCalls(stack, normal.broadcastId)).filter((c) => {
      const t = Date.parse(c.created_at);
      return t > firstCritical && t < lastCritical;
    }).length;
    expect(normalDuring).toBeLessThanOrEqual(criticalCalls.length / 2);

    // Pause: within a second no replica places another call of the broadcast.
    const paused = await controlBroadcast(nc, normal.broadcastId, 'pause');
    expect(paused.ok).toBe(true);
    const pausedAt = Date.now();
    await waitForSummary(stack, normal.broadcastId, (s) => s.status === 'paused', 30_000, 'paused');
    // An absence can only be observed over a window: watch voice-sim for three seconds after the grace.
    const observeUntil = pausedAt + 4000;
    await waitFor(() => Date.now() >= observeUntil, { timeoutMs: 10_000, intervalMs: 100 });
    const afterPause = (await simCalls(stack, normal.broadcastId)).filter((c) => Date.parse(c.created_at) > pausedAt + 1000);
    expect(afterPause).toEqual([]);
    const beforeResume = (await simCalls(stack, normal.broadcastId)).length;
    expect(beforeResume).toBeLessThan(400);

    // Resume: calls continue.
    expect((await controlBroadcast(nc, normal.broadcastId, 'resume')).ok).toBe(true);
    await waitFor(async () => (await simCalls(stack, normal.broadcastId)).length >= beforeResume + 20, { timeoutMs: 30_000, message: 'calls after resume' });

    // Cancel: the rest end `cancelled`, counts add up, nobody called twice.
    expect((await controlBroadcast(nc, normal.broadcastId, 'cancel')).ok).toBe(true);
    const cancelledAt = Date.now();
    const summary = await waitForSummary(stack, normal.broadcastId, (s) => s.status === 'cancelled' && s.pending === 0, 60_000, 'cancelled and final');
    expect(finalTotal(summary, FINAL_STATES)).toBe(400);
    expect(summary.counts.cancelled ?? 0).toBeGreaterThan(0);
    const calls = await simCalls(stack, normal.broadcastId);
    expect(calls.filter((c) => Date.parse(c.created_at) > cancelledAt + 1000)).toEqual([]);
    expect(doubledAttempts(calls)).toEqual([]);
    expect(calls.length + (summary.counts.cancelled ?? 0)).toBe(400);
  });

  it('retries at the configured delay and stops once acknowledged', async () => {
    const busy = NUMBERS.filter((n) => n.endsWith('6')).slice(0, 8);
    const acknowledging = NUMBERS.filter((n) => n.endsWith('0')).slice(0, 8);
    const delaySeconds = 2;
    const reply = await broadcast({
      name: 'retries',
      audience: { numbers: [...busy, ...acknowledging] },
      acknowledgement: {},
      retry: { maxAttempts: 3, delaySeconds, on: ['busy'] },
    });
    const summary = await waitForSummary(stack, reply.broadcastId, (s) => s.status === 'completed', 120_000, 'retries completed');
    expect(summary.counts.busy).toBe(8);
    expect(summary.counts.acknowledged).toBe(8);

    const calls = await simCalls(stack, reply.broadcastId);
    expect(doubledAttempts(calls)).toEqual([]);
    for (const number of acknowledging) expect(calls.filter((c) => `+${c.to}` === number)).toHaveLength(1);
    for (const number of busy) {
      const mine = calls
        .filter((c) => `+${c.to}` === number)
        .sort((a, b) => (attemptOf(a.event_url)?.attempt ?? 0) - (attemptOf(b.event_url)?.attempt ?? 0));
      expect(mine.map((c) => attemptOf(c.event_url)?.attempt)).toEqual([1, 2, 3]);
      for (let i = 1; i < mine.length; i += 1) {
        const gap = Date.parse(mine[i]!.created_at) - Date.parse(mine[i - 1]!.created_at);
        // Not before the delay (measured from the end of the previous attempt, so never less)…
        expect(gap).toBeGreaterThanOrEqual(delaySeconds * 1000);
        // …and not lost for long: the retry is picked up soon after it is due (generous on a busy host).
        expect(gap).toBeLessThan(delaySeconds * 1000 + 15_000);
      }
    }
  });

  // Last: the account breaker stays open on every replica afterwards.
  it('a 401 from the Voice API halts the broadcast with that reason and places nothing', async () => {
    await simConfig(stack, { overrides: [{ match: '*', createStatus: 401 }] });
    const reply = await broadcast({ name: 'unauthorised', audience: { numbers: NUMBERS.slice(500, 530) } });
    const summary = await waitForSummary(stack, reply.broadcastId, (s) => s.status === 'halted', 60_000, 'halted');
    expect(summary.reason ?? '').toMatch(/401|unauthori[sz]ed/i);
    expect(await simCalls(stack, reply.broadcastId)).toEqual([]);
  });
});
