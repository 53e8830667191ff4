import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callEventSubject, encodeContactVars, keypressSubject } from '@clarion/contracts';
import { startNatsServer, waitFor, type NatsServerHandle } from '@clarion/testkit';
import { request, startHarness, type Harness } from './harness.js';
import { deliveredStatuses, startSim, type Sim, type TruthCall } from './sim.js';

// voice-sim places real calls whose signed answer, event and input webhooks hit the real webhook
// app; what lands on NATS is compared with voice-sim's ground truth.
const SECRET = 'voice-sim-signature-secret-0123456789';
const number = (d: number) => `1415555010${d}`;

let nats: NatsServerHandle;
let h: Harness;
let sim: Sim;
const others: Sim[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  h = await startHarness(nats.url, (base) => ({ publicUrl: base, signatureSecret: SECRET }));
  sim = await startSim({
    signatureSecret: SECRET,
    // One byte of every POST body for contact "tamper" is changed after voice-sim signed it.
    tamper: (url, body) => {
      if (!url.includes('c=tamper')) return body;
      const at = body.indexOf('Z"');
      const digit = Number(body[at - 1]);
      return `${body.slice(0, at - 1)}${(digit + 1) % 10}${body.slice(at)}`;
    },
  });
  const ack = { acknowledgement: { prompt: 'Press 1 to confirm.', timeoutSeconds: 2 } };
  for (const id of ['seq', 'chaos', 'tampered', 'forged', 'stale', 'unsigned']) await h.putSpec(id, request({ message: { text: 'Hello {{name}}, the water is off in {{area}}.' }, ...ack }));
});
afterAll(async () => {
  for (const s of [sim, ...others]) await s?.close();
  await h?.close();
  await nats?.dispose();
});

async function stored(b: string, c: string): Promise<Record<string, unknown>[]> {
  return (await h.messages(callEventSubject(b))).filter((e) => e.contactId === c);
}

async function metric(pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${h.base}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

/** Each call's events on NATS are exactly the ones voice-sim delivered: same statuses, same uuid, once each. */
async function expectStreamMatchesTruth(b: string, calls: TruthCall[], contactOf: (call: TruthCall) => string): Promise<void> {
  for (const call of calls) {
    const c = contactOf(call);
    const events = await stored(b, c);
    expect(events.map((e) => e.status).sort(), `${c} (${call.outcome})`).toEqual(deliveredStatuses(call));
    expect(call.events.filter((e) => !e.delivered), `${c} undelivered`).toEqual([]);
    for (const e of events) expect(e, c).toMatchObject({ broadcastId: b, contactId: c, attempt: 1, uuid: call.uuid });
    const completed = events.find((e) => e.status === 'completed');
    if (completed) expect(completed.duration, c).toBe(call.duration);
  }
}

describe('webhooks from a real voice-sim (signed, time scale 0.01)', () => {
  it('stores every event sequence exactly as voice-sim delivered it, with the key presses', async () => {
    const v = encodeContactVars({ name: 'Ada', vars: { area: 'Riverside' } });
    for (let d = 0; d <= 9; d++) await sim.place(h.base, { b: 'seq', c: `c${d}`, v }, number(d));
    const calls = await waitFor(() => sim.settled(10), { timeoutMs: 30_000, message: 'all calls played' });
    const byDigit = (call: TruthCall) => `c${call.to.slice(-1)}`;
    // The NCCO played: answered calls reached the input, and no call ended in an NCCO error.
    expect(calls.filter((c) => c.answer !== null).every((c) => c.answer?.ok)).toBe(true);
    expect(calls.flatMap((c) => c.events.map((e) => e.status))).not.toContain('error');
    expect(calls.find((c) => c.outcome === 'answered_ack')?.digits).toBe('1');
    await expectStreamMatchesTruth('seq', calls, byDigit);
    const outcomes = Object.fromEntries(calls.map((c) => [byDigit(c), c.outcome]));
    expect(outcomes).toMatchObject({ c0: 'answered_ack', c4: 'answered', c5: 'machine', c6: 'busy', c7: 'no_answer', c8: 'failed', c9: 'rejected' });
    const statuses = async (c: string) => (await stored('seq', c)).map((e) => e.status);
    expect(await statuses('c9')).toEqual(['started', 'rejected']);
    expect(await statuses('c5')).toContain('machine');
    expect(await statuses('c0')).toContain('human');

    const keypresses = await h.messages(keypressSubject('seq'));
    for (const d of [0, 1, 2, 3]) expect(keypresses.filter((k) => k.contactId === `c${d}`).map((k) => k.meaning)).toEqual(['acknowledge']);
    // No key: the prompt is asked once more, then goodbye.
    for (const d of [4, 5]) expect(keypresses.filter((k) => k.contactId === `c${d}`).map((k) => k.meaning)).toEqual(['none', 'none']);
    expect(keypresses.filter((k) => ['c6', 'c7', 'c8', 'c9'].includes(String(k.contactId)))).toEqual([]);
  });

  it('stores duplicated, delayed and reordered events once each', async () => {
    await sim.configure({ faults: { duplicateEventRate: 1, reorderRate: 1, delayEventRate: 0.3, delayEventMs: 30 } });
    try {
      const before = (await sim.calls()).length;
      for (let d = 0; d <= 9; d++) await sim.place(h.base, { b: 'chaos', c: `c${d}` }, number(d));
      const all = await waitFor(() => sim.settled(before + 10), { timeoutMs: 30_000, message: 'all calls played' });
      const calls = all.slice(before);
      expect(calls.flatMap((c) => c.events).filter((e) => e.duplicate).length).toBeGreaterThan(20);
      await expectStreamMatchesTruth('chaos', calls, (call) => `c${call.to.slice(-1)}`);
      // Out of order for real: ringing reached the stream before started.
      const order = (await stored('chaos', 'c6')).map((e) => e.status);
      expect(order.indexOf('ringing')).toBeLessThan(order.indexOf('started'));
      expect(await metric(/webhook_events_published_total\{kind="call",duplicate="true",service="webhook"\} (\d+)/)).toBeGreaterThan(20);
    } finally {
      await sim.configure({ faults: { duplicateEventRate: 0, reorderRate: 0, delayEventRate: 0 } });
    }
  });

  it('refuses a body with one byte changed after signing (hash_mismatch) and stores nothing of it', async () => {
    const before = (await sim.calls()).length;
    const refusedBefore = await metric(/webhook_refused_total\{reason="hash_mismatch",service="webhook"\} (\d+)/);
    await sim.place(h.base, { b: 'tampered', c: 'tamper' }, number(0));
    const [call] = (await waitFor(() => sim.settled(before + 1), { timeoutMs: 30_000, message: 'call played' })).slice(before);
    // The answer (a GET, no body) was served; every POST was refused.
    expect(call?.answer?.ok).toBe(true);
    expect(call?.events.length).toBeGreaterThan(3);
    for (const e of call?.events ?? []) expect(e, e.status).toMatchObject({ delivered: false, http_status: 401 });
    expect(await h.messages(callEventSubject('tampered'))).toEqual([]);
    expect(await h.messages(keypressSubject('tampered'))).toEqual([]);
    const refused = await metric(/webhook_refused_total\{reason="hash_mismatch",service="webhook"\} (\d+)/);
    expect(refused - refusedBefore).toBe(call?.events.length);
  });

  it('refuses webhooks forged with another secret, signed too long ago, or unsigned', async () => {
    const cases = [
      { b: 'forged', reason: 'bad_signature', options: { signatureSecret: 'another-secret-entirely' } },
      { b: 'stale', reason: 'stale', options: { signatureSecret: SECRET, clockOffsetMs: -10 * 60_000 } },
      { b: 'unsigned', reason: 'missing', options: {} },
    ];
    for (const { b, reason, options } of cases) {
      const other = await startSim(options);
      others.push(other);
      const refusedBefore = await metric(new RegExp(`webhook_refused_total\\{reason="${reason}",service="webhook"\\} (\\d+)`));
      await other.place(h.base, { b, c: 'c1' }, number(0));
      const [call] = await waitFor(() => other.settled(1), { timeoutMs: 30_000, message: `${b} call played` });
      // Without an NCCO the call ends after the answer webhook; nothing it sent was accepted.
      expect(call?.answer, b).toMatchObject({ ok: false, http_status: 401 });
      for (const e of call?.events ?? []) expect(e, `${b} ${e.status}`).toMatchObject({ delivered: false, http_status: 401 });
      expect(other.seen.length, b).toBeGreaterThan(1);
      expect(other.seen.every((s) => s.status === 401), b).toBe(true);
      expect(await h.messages(callEventSubject(b)), b).toEqual([]);
      const refused = await metric(new RegExp(`webhook_refused_total\\{reason="${reason}",service="webhook"\\} (\\d+)`));
      expect(refused - refusedBefore, b).toBe(other.seen.length);
    }
  });
});
