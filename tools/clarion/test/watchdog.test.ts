import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FINAL_STATES } from '@clarion/contracts';
import { waitFor } from '@clarion/testkit';
import type { NatsConnection } from '@clarion/nats';
import type { Stack } from '../src/stack.js';
import { useStack } from './stack-support.js';
import { requestBroadcast } from '../src/client.js';
import { fictionalNumbers } from '../src/fixtures.js';
import { doubledAttempts, finalTotal, firstAttemptContacts, simCalls, waitForSummary, type SimCall } from './dialer-support.js';

const CPS = 10;
const AUDIENCE = fictionalNumbers(40);
// About 25 s of speech, so answered calls are still talking when voice-sim dies.
const LONG_TEXT = 'This is a test of the Clarion alerting system. '.repeat(8).trim();

/**
 * Promise 2 when the provider forgets calls: voice-sim is SIGKILLed while calls are in progress and
 * restarted empty, so their final events never come. The dialer's attempt watchdog asks
 * GET /v1/calls/{uuid}, gets 404 and finalises those attempts `unknown`; the broadcast completes.
 */
describe('attempt watchdog: the Voice API forgets calls in progress', () => {
  let stack: Stack;
  let nc: NatsConnection;
  let stateDir: string;
  useStack('watchdog', {
    accountCps: CPS,
    simCps: CPS,
    timeScale: 1,
    logLevel: 'warn',
    seed: 'watchdog',
    env: {
      dialer: {
        ATTEMPT_RESULT_TIMEOUT_MS: '8000',
        STATUS_RECHECK_MS: '2000',
        WATCHDOG_SCAN_MS: '2000',
        STATUS_CHECK_LIMIT: '5',
        AMBIGUITY_TIMEOUT_MS: '4000',
        CLAIM_GRACE_MS: '3000',
        VOICE_API_TIMEOUT_MS: '2000',
      },
    },
  }, (suite) => ({ stack, nc, stateDir } = suite));

  /** Every call voice-sim ever placed, across its restarts (its append-only ground-truth log). */
  const loggedCalls = (broadcastId: string): SimCall[] =>
    readFileSync(join(stateDir, 'logs', 'voice-sim-calls.jsonl'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as SimCall)
      .filter((c) => c.event_url && new URL(c.event_url).searchParams.get('b') === broadcastId);

  it('finalises every contact (some unknown), completes the broadcast and calls nobody twice', async () => {
    const reply = await requestBroadcast(nc, {
      name: 'voice-sim forgets its calls',
      message: { text: LONG_TEXT },
      audience: { numbers: AUDIENCE },
      retry: { maxAttempts: 1 },
    });
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.counts.accepted).toBe(AUDIENCE.length);
    const id = reply.broadcastId;

    // Every first attempt placed, most calls still ringing or talking: the provider dies and forgets them.
    await waitFor(async () => (await simCalls(stack, id)).length === AUDIENCE.length, { timeoutMs: 60_000, message: 'all calls placed' });
    const sim = stack.services['voice-sim'][0]!;
    await sim.kill('SIGKILL');
    await sim.restart();
    expect(await simCalls(stack, id)).toEqual([]); // it really forgot them

    const summary = await waitForSummary(stack, id, (s) => s.status === 'completed', 180_000, 'broadcast completed after the provider forgot calls');
    expect(finalTotal(summary, FINAL_STATES)).toBe(AUDIENCE.length);
    expect(summary.pending).toBe(0);
    expect(summary.counts.unknown ?? 0).toBeGreaterThan(0);
    // Calls that ended before the kill kept their real outcomes.
    expect(AUDIENCE.length - (summary.counts.unknown ?? 0)).toBeGreaterThan(0);

    const calls = loggedCalls(id);
    expect(doubledAttempts(calls)).toEqual([]);
    expect(calls).toHaveLength(AUDIENCE.length);
    expect(firstAttemptContacts(calls).size).toBe(AUDIENCE.length);
  });
});
