import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { waitFor } from '@clarion/testkit';
import type { NatsConnection } from '@clarion/nats';
import type { Stack } from '../src/stack.js';
import { useStack } from './stack-support.js';
import { attemptOf } from '../src/demo.js';
import { requestBroadcast, restClient } from '../src/client.js';
import { fictionalNumbers } from '../src/fixtures.js';

interface Summary {
  status: string;
  audience: number;
  final: number;
  pending: number;
  attempts: number;
  counts: Record<string, number>;
}
interface SimCall {
  uuid: string;
  to: string;
  outcome: string;
  event_url: string;
}
interface ContactView {
  id: string;
  number: string;
  state: string;
  final: boolean;
  attempts: number;
}

/** voice-sim's outcome names → the contact final state the reporter must show. */
const SIM_TO_STATE: Record<string, string> = {
  answered_ack: 'acknowledged',
  answered: 'answered',
  machine: 'voicemail',
  busy: 'busy',
  no_answer: 'no_answer',
  failed: 'failed',
  rejected: 'rejected',
};

const CONTACTS = 300;

describe('reporter SIGKILLed mid-broadcast and restarted', () => {
  let stack: Stack;
  let nc: NatsConnection;
  useStack('reporter-crash', { accountCps: 50, timeScale: 0.01, logLevel: 'warn', seed: 'reporter-crash' }, (suite) => ({ stack, nc } = suite));

  it('ends with per-contact attempts and outcomes equal to voice-sim ground truth', async () => {
    const reporter = restClient(stack.url('reporter'), stack.secrets.apiToken);
    const sim = stack.url('voice-sim');
    const simCalls = async () => ((await (await fetch(`${sim}/_sim/calls`)).json()) as { calls: SimCall[] }).calls;

    const reply = await requestBroadcast(nc, {
      name: 'reporter crash',
      idempotencyKey: 'reporter-crash-1',
      message: { text: 'Reporter crash test.' },
      audience: { numbers: fictionalNumbers(CONTACTS) },
      acknowledgement: {},
      retry: { maxAttempts: 2, delaySeconds: 0.2, on: ['busy', 'no_answer', 'failed'] },
      pacing: { callsPerSecond: 50 },
    });
    if (!reply.ok) throw new Error(reply.error.message);
    const bid = reply.broadcastId;

    // Mid-stream: the reporter has applied some but far from all of the broadcast.
    await waitFor(
      async () => {
        const s = await reporter.get<Summary>(`/v1/broadcasts/${bid}`).catch(() => undefined);
        return s && s.final >= 30 ? s : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, message: 'reporter applied some finals' },
    );
    const placedAtKill = (await simCalls()).length;
    const [reporterProcess] = stack.services.reporter;
    if (!reporterProcess) throw new Error('no reporter process');
    await reporterProcess.kill('SIGKILL');
    expect(reporterProcess.running()).toBe(false);
    // The broadcast keeps going while the reporter is down, so there is a backlog to catch up on.
    await waitFor(async () => (await simCalls()).length >= placedAtKill + 50, { timeoutMs: 60_000, intervalMs: 100, message: 'calls while the reporter is down' });
    await reporterProcess.restart();

    const summary = await waitFor(
      async () => {
        const s = await reporter.get<Summary>(`/v1/broadcasts/${bid}`);
        return s.status === 'completed' ? s : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 250, message: 'broadcast completed after the reporter restart' },
    );
    expect(placedAtKill).toBeLessThan(CONTACTS);

    const calls = await simCalls();
    // Ground truth per contact: how many calls, and the outcome each got (the sim's rule is per number, so all agree).
    const truth = new Map<string, { calls: number; attempts: Set<number>; states: Set<string> }>();
    for (const call of calls) {
      const identity = attemptOf(call.event_url);
      if (!identity) throw new Error(`call ${call.uuid} without attempt identity`);
      const t = truth.get(identity.contactId) ?? { calls: 0, attempts: new Set<number>(), states: new Set<string>() };
      t.calls += 1;
      t.attempts.add(identity.attempt);
      t.states.add(SIM_TO_STATE[call.outcome] ?? `sim:${call.outcome}`);
      truth.set(identity.contactId, t);
    }
    expect(truth.size).toBe(CONTACTS);

    const contacts: ContactView[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: ContactView[]; nextCursor: string | null } = await reporter.get(
        `/v1/broadcasts/${bid}/contacts?limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
      );
      contacts.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(contacts).toHaveLength(CONTACTS);

    const mismatches: string[] = [];
    for (const c of contacts) {
      const t = truth.get(c.id);
      if (!t) {
        mismatches.push(`${c.id}: reporter has it, voice-sim never called it`);
        continue;
      }
      const expectedState = t.states.size === 1 ? [...t.states][0] : `mixed:${[...t.states].join('/')}`;
      if (t.calls !== t.attempts.size) mismatches.push(`${c.id}: ${t.calls} calls for ${t.attempts.size} attempts`);
      if (c.attempts !== t.calls) mismatches.push(`${c.id}: reporter says ${c.attempts} attempts, voice-sim placed ${t.calls}`);
      if (!c.final || c.state !== expectedState) mismatches.push(`${c.id}: reporter says ${c.state}, voice-sim says ${expectedState}`);
    }
    expect(mismatches).toEqual([]);

    // The broadcast's counts equal the ground truth too, and the attempts total is every call placed.
    const expectedCounts: Record<string, number> = {};
    for (const t of truth.values()) {
      const state = [...t.states][0] ?? 'none';
      expectedCounts[state] = (expectedCounts[state] ?? 0) + 1;
    }
    expect(summary.counts).toEqual(expectedCounts);
    expect(summary).toMatchObject({ audience: CONTACTS, final: CONTACTS, pending: 0, attempts: calls.length });
    // Retries really happened (busy / no answer / failed numbers got a second call).
    expect(calls.length).toBeGreaterThan(CONTACTS);
  });
});
