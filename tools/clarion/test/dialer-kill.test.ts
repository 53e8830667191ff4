import { describe, expect, it } from 'vitest';
import { FINAL_STATES } from '@clarion/contracts';
import { waitFor } from '@clarion/testkit';
import type { NatsConnection } from '@clarion/nats';
import type { Stack } from '../src/stack.js';
import { useStack } from './stack-support.js';
import { requestBroadcast } from '../src/client.js';
import { fictionalNumbers } from '../src/fixtures.js';
import { doubledAttempts, finalTotal, firstAttemptContacts, simCalls, simConfig, simStats, waitForSummary } from './dialer-support.js';

const CPS = 30;
const NUMBERS = fictionalNumbers(600);

/**
 * Promises 1 and 2 under crashes: dialer replicas killed with SIGKILL mid-broadcast and a Voice API
 * that places the call and then times out. voice-sim's ground truth is the judge.
 */
describe('dialer: crashes and ambiguous creates against voice-sim', () => {
  let stack: Stack;
  let nc: NatsConnection;
  useStack('dialer-kill', {
    accountCps: CPS,
    simCps: CPS,
    timeScale: 0.01,
    dialerReplicas: 3,
    logLevel: 'warn',
    seed: 'dialer-kill',
    // A killed replica's unacked jobs come back after 3 s; an unresolved claim is settled after 5 s.
    env: { dialer: { ACK_WAIT_MS: '3000', AMBIGUITY_TIMEOUT_MS: '5000', CLAIM_GRACE_MS: '3000', VOICE_API_TIMEOUT_MS: '1500' } },
  }, (suite) => ({ stack, nc } = suite));

  const broadcast = async (name: string, numbers: string[]) => {
    const reply = await requestBroadcast(nc, {
      name,
      message: { text: 'Test alert.' },
      audience: { numbers },
      // One attempt each: every contact must be called exactly once, whatever happens.
      retry: { maxAttempts: 1 },
    });
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.counts.accepted).toBe(numbers.length);
    return reply.broadcastId;
  };

  it('places no second call for an attempt whose create timed out after the call was placed', async () => {
    await simConfig(stack, { faults: { timeoutAfterPlaceRate: 0.3, timeoutAfterPlaceMode: 'reset' } });
    const timeoutsBefore = (await simStats(stack)).timeouts_after_place;
    try {
      const audience = NUMBERS.slice(0, 60);
      const id = await broadcast('ambiguous creates', audience);
      const summary = await waitForSummary(stack, id, (s) => s.status === 'completed', 180_000);
      expect(finalTotal(summary, FINAL_STATES)).toBe(60);
      const calls = await simCalls(stack, id);
      expect(doubledAttempts(calls)).toEqual([]);
      expect(calls).toHaveLength(60);
      expect(new Set(calls.map((c) => `+${c.to}`))).toEqual(new Set(audience));
      // The fault really fired: some creates were placed and then cut off.
      expect((await simStats(stack)).timeouts_after_place - timeoutsBefore).toBeGreaterThan(5);
    } finally {
      await simConfig(stack, { faults: { timeoutAfterPlaceRate: 0 } });
    }
  });

  it('misses nobody and calls nobody twice when dialer replicas are SIGKILLed mid-broadcast', async () => {
    const audience = NUMBERS.slice(100, 400);
    const id = await broadcast('kill dialers', audience);
    let killed = 0;
    for (const threshold of [40, 110, 180]) {
      await waitFor(async () => (await simCalls(stack, id)).length >= threshold, { timeoutMs: 120_000, message: `${threshold} calls placed` });
      const victim = stack.services.dialer[killed % stack.services.dialer.length]!;
      await victim.kill('SIGKILL');
      killed += 1;
      // Let the surviving replicas carry on for a moment, then bring the dead one back.
      const before = (await simCalls(stack, id)).length;
      await waitFor(async () => (await simCalls(stack, id)).length >= Math.min(before + 10, audience.length), { timeoutMs: 60_000 });
      await victim.restart();
    }
    expect(killed).toBe(3);
    const summary = await waitForSummary(stack, id, (s) => s.status === 'completed', 240_000);
    expect(finalTotal(summary, FINAL_STATES)).toBe(audience.length);
    const calls = await simCalls(stack, id);
    expect(doubledAttempts(calls)).toEqual([]);
    expect(firstAttemptContacts(calls).size).toBe(audience.length);
    expect(calls).toHaveLength(audience.length);
  });
});
