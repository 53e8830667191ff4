import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import { BUCKETS, FINAL_STATES, STREAMS } from '@clarion/contracts';
import { waitFor } from '@clarion/testkit';
import type { NatsConnection } from '@clarion/nats';
import type { Stack } from '../src/stack.js';
import { useStack } from './stack-support.js';
import { checkGroundTruth, attemptOf } from '../src/demo.js';
import { requestBroadcast, restClient } from '../src/client.js';

interface Summary {
  status: string;
  audience: number;
  pending: number;
  counts: Record<string, number>;
}
interface SimCall {
  uuid: string;
  to: string;
  event_url: string;
}

const AREAS = ['202', '212', '312', '415', '617', '713'];
/** 60 fictional US numbers, 555-0100…0109 in six area codes: every last digit, so mixed outcomes. */
const NUMBERS = AREAS.flatMap((area) => Array.from({ length: 10 }, (_, i) => `+1${area}55501${String(i).padStart(2, '0')}`));

describe('a whole broadcast, end to end, on the embedded default', () => {
  let stack: Stack;
  let nc: NatsConnection;
  useStack('e2e', { accountCps: 50, timeScale: 0.01, signed: true, logLevel: 'warn', seed: 'e2e' }, (suite) => ({ stack, nc } = suite));

  it('calls every contact once per attempt and reports exactly what voice-sim did', async () => {
    const contacts = restClient(stack.url('contacts'), stack.secrets.apiToken);
    const reporter = restClient(stack.url('reporter'), stack.secrets.apiToken);

    // 40 numbers arrive through a CSV list (national format, messy), 25 inline (5 overlap the list).
    const list = await contacts.post<{ id: string }>('/v1/lists', { name: 'e2e' });
    const csv = ['Name,Phone,Country', ...NUMBERS.slice(0, 40).map((n, i) => `Person ${i},"(${n.slice(2, 5)}) ${n.slice(5, 8)}-${n.slice(8)}",US`)].join('\r\n');
    const report = await contacts.post<{ imported: number; invalid: unknown[] }>(`/v1/lists/${list.id}/import`, csv, 'text/csv');
    expect(report.imported).toBe(40);

    const maxAttempts = 2;
    const reply = await requestBroadcast(nc, {
      name: 'e2e broadcast',
      idempotencyKey: 'e2e-1',
      message: { text: 'Hello {{name}}, this is a test alert.' },
      audience: { listIds: [list.id], numbers: NUMBERS.slice(35, 60), defaultCountry: 'US' },
      acknowledgement: {},
      retry: { maxAttempts, delaySeconds: 0.2, on: ['busy', 'no_answer', 'failed'] },
      pacing: { callsPerSecond: 50 },
    });
    if (!reply.ok) throw new Error(reply.error.message);
    expect(reply.counts).toEqual({ accepted: 60, invalid: 0, duplicate: 5, suppressed: 0 });

    const summary = await waitFor(
      async () => {
        const s = await reporter.get<Summary>(`/v1/broadcasts/${reply.broadcastId}`);
        return s.status === 'completed' ? s : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, message: 'broadcast completed' },
    );

    // Every contact final; the counts add up to the audience.
    expect(summary.audience).toBe(65);
    expect(summary.pending).toBe(0);
    const total = FINAL_STATES.reduce((sum, state) => sum + (summary.counts[state] ?? 0), 0);
    expect(total).toBe(65);
    expect(summary.counts.duplicate).toBe(5);

    // Ground truth: one first-attempt call per accepted contact, none doubled, policy respected.
    const sim = (await (await fetch(`${stack.url('voice-sim')}/_sim/calls`)).json()) as { calls: SimCall[] };
    const truth = checkGroundTruth(sim.calls, 60, maxAttempts);
    expect(truth.problems).toEqual([]);
    expect(new Set(sim.calls.map((c) => `+${c.to}`))).toEqual(new Set(NUMBERS));

    // Mixed outcomes really happened, and the reporter's attempts match voice-sim's calls.
    const reached = (summary.counts.acknowledged ?? 0) + (summary.counts.answered ?? 0) + (summary.counts.voicemail ?? 0);
    expect(reached).toBeGreaterThan(0);
    expect(reached).toBeLessThan(60);
    const retried = sim.calls.filter((c) => attemptOf(c.event_url)?.attempt === 2).length;
    expect(retried).toBeGreaterThan(0);
    expect(sim.calls.length).toBe(60 + retried);
  });

  it('answers a malformed broadcast.request with an error naming the problem and creates nothing', async () => {
    const kv = await new Kvm(nc).open(BUCKETS.broadcasts);
    const jsm = await jetstreamManager(nc);
    const dialBefore = (await jsm.streams.info(STREAMS.dial.name)).state.messages;
    const countKeys = async () => {
      let n = 0;
      for await (const _ of await kv.keys()) n += 1;
      return n;
    };
    const before = await countKeys();

    const raw = async (body: string) => (await nc.request('broadcast.request', body, { timeout: 10_000 })).json<{ ok: boolean; error?: { message: string; details?: { path: string }[] } }>();

    const badJson = await raw('{"name": "x", ');
    expect(badJson.ok).toBe(false);
    expect(badJson.error?.message).toMatch(/JSON/);

    const noMessage = await raw(JSON.stringify({ name: 'x', audience: { numbers: ['+14155550100'] } }));
    expect(noMessage.ok).toBe(false);
    expect(noMessage.error?.details?.map((d) => d.path)).toContain('message');

    const unknownList = await requestBroadcast(nc, { name: 'x', message: { text: 'hi' }, audience: { listIds: ['no-such-list'] } });
    expect(unknownList.ok).toBe(false);
    if (!unknownList.ok) expect(unknownList.error.message).toMatch(/no-such-list/);

    expect(await countKeys()).toBe(before);
    expect((await jsm.streams.info(STREAMS.dial.name)).state.messages).toBe(dialBefore);
    for (const name of ['contacts', 'dialer', 'webhook', 'reporter'] as const) {
      const ready = await fetch(`${stack.url(name)}/readyz`);
      expect(ready.status, `${name} still ready`).toBe(200);
    }
  });
});
