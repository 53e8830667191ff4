import { describe, expect, it } from 'vitest';
import { waitFor } from '@clarion/testkit';
import type { NatsConnection } from '@clarion/nats';
import { controlBroadcast, requestBroadcast, restClient } from '../src/client.js';
import { attemptOf, checkGroundTruth } from '../src/demo.js';
import type { ServiceName, Stack } from '../src/stack.js';
import { useStack } from './stack-support.js';

interface SimCall {
  uuid: string;
  to: string;
  event_url: string;
  ended_at: string | null;
}
interface Summary {
  status: string;
  audience: number;
  pending: number;
  done: boolean;
  attempts: number;
  counts: Record<string, number>;
}

const AREAS = ['202', '212', '312', '415', '617', '713', '801', '303'];
/** 80 fictional numbers, +1 NXX 555-0100…0109: every last digit, so every outcome and retries. */
const NUMBERS = AREAS.flatMap((area) => Array.from({ length: 10 }, (_, i) => `+1${area}55501${String(i).padStart(2, '0')}`));

describe('graceful shutdown mid-broadcast', () => {
  let stack: Stack;
  let nc: NatsConnection;
  useStack('shutdown', { accountCps: 4, timeScale: 0.05, signed: true, logLevel: 'warn', seed: 'shutdown' }, (suite) => ({ stack, nc } = suite), 120_000);

  it('SIGTERM to dialer, reporter, contacts and webhook: each exits 0, restarts, nobody missed or called twice', async () => {
    const simCalls = async (broadcastId: string) => {
      const body = (await (await fetch(`${stack.url('voice-sim')}/_sim/calls`)).json()) as { calls: SimCall[] };
      return body.calls.filter((c) => new URL(c.event_url).searchParams.get('b') === broadcastId);
    };
    const maxAttempts = 2;
    const reply = await requestBroadcast(nc, {
      name: 'shutdown test',
      message: { text: 'Hello {{name}}. This is a test.' },
      audience: { numbers: NUMBERS },
      acknowledgement: { prompt: 'Press 1.' },
      retry: { maxAttempts, delaySeconds: 1, on: ['busy', 'no_answer', 'failed'] },
      pacing: { callsPerSecond: 4 },
    });
    if (!reply.ok) throw new Error(reply.error.message);
    const id = reply.broadcastId;
    expect(reply.counts.accepted).toBe(NUMBERS.length);

    const terminate = async (name: ServiceName) => {
      const service = stack.services[name][0]!;
      const code = await service.kill('SIGTERM');
      // 0 means every shutdown step finished before the helper's 9 s deadline (it exits 1 otherwise).
      expect(code, `${name} did not shut down cleanly:\n${service.tail(20)}`).toBe(0);
      await service.restart();
    };
    let seen = 0;
    const afterMoreCalls = async (more: number) => {
      const target = seen + more;
      await waitFor(async () => (await simCalls(id)).length >= target, { timeoutMs: 90_000, message: `${target} calls placed` });
      seen = target;
    };

    // Consumers and producers with in-flight work: the broadcast keeps dialling around them.
    for (const name of ['dialer', 'reporter', 'contacts'] as const) {
      await afterMoreCalls(8);
      await terminate(name);
    }
    // A single webhook replica cannot take events while it is down (Vonage's retries are immediate),
    // so it is stopped between calls: pause, let the calls in flight end, SIGTERM, restart, resume.
    await afterMoreCalls(8);
    expect((await controlBroadcast(nc, id, 'pause')).ok).toBe(true);
    await waitFor(async () => (await simCalls(id)).every((c) => c.ended_at !== null), { timeoutMs: 60_000, message: 'calls in flight ended' });
    const reporter = restClient(stack.url('reporter'), stack.secrets.apiToken);
    await waitFor(async () => (await reporter.get<Summary>(`/v1/broadcasts/${id}`)).attempts === (await simCalls(id)).length, {
      timeoutMs: 60_000,
      message: 'reporter caught up with the calls placed',
    });
    await terminate('webhook');
    expect((await controlBroadcast(nc, id, 'resume')).ok).toBe(true);

    const summary = await waitFor(
      async () => {
        const s = await reporter.get<Summary>(`/v1/broadcasts/${id}`);
        return s.done ? s : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 500, message: 'broadcast completed after the restarts' },
    );
    const calls = await simCalls(id);
    const truth = checkGroundTruth(calls, NUMBERS.length, maxAttempts);
    expect(truth.problems).toEqual([]);
    expect(truth.doubled).toBe(0);
    expect(truth.firstAttemptCalls).toBe(NUMBERS.length);
    // The reporter saw exactly the calls voice-sim placed, and every contact ended once.
    expect(summary.pending).toBe(0);
    expect(Object.values(summary.counts).reduce((a, b) => a + b, 0)).toBe(NUMBERS.length);
    await waitFor(async () => (await reporter.get<Summary>(`/v1/broadcasts/${id}`)).attempts === calls.length, {
      timeoutMs: 30_000,
      message: `reporter attempts = ${calls.length} calls in voice-sim`,
    });
    const perContact = new Map<string, number>();
    for (const call of calls) {
      const who = attemptOf(call.event_url);
      if (who) perContact.set(who.contactId, Math.max(perContact.get(who.contactId) ?? 0, who.attempt));
    }
    expect(perContact.size).toBe(NUMBERS.length);
  }, 420_000);
});
