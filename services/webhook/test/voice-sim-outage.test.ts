import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callEventSubject, keypressSubject } from '@clarion/contracts';
import { startNatsServer, waitFor, type NatsServerHandle } from '@clarion/testkit';
import { request, startHarness, type Harness } from './harness.js';
import { deliveredStatuses, startSim, type Sim } from './sim.js';

const SECRET = 'voice-sim-signature-secret-0123456789';

let nats: NatsServerHandle;
let h: Harness;
let sim: Sim;

beforeAll(async () => {
  nats = await startNatsServer();
  h = await startHarness(nats.url, (base) => ({ publicUrl: base, signatureSecret: SECRET, publishTimeoutMs: 300, publishDeadlineMs: 0 }));
  sim = await startSim({
    signatureSecret: SECRET,
    // Vonage keeps retrying a 5xx with a back-off; voice-sim retries at once, so the back-off is added here.
    backoff: { status: 503, ms: 50 },
    settings: {
      webhooks: { eventAttempts: 400, answerAttempts: 400 },
      // A 0.5 s ring and 1 s before the key press (simulated 50 s and 100 s at 0.01) leave time to stop NATS mid-call.
      overrides: [{ match: '14155550100', ringSec: 50 }],
      durations: { keyDelaySec: 100 },
    },
  });
  await h.putSpec('outage', request({ acknowledgement: { prompt: 'Press 1 to confirm.', timeoutSeconds: 2 } }));
});
afterAll(async () => {
  await sim?.close();
  await h?.close();
  await nats?.dispose();
});

describe('NATS stopped during a real voice-sim call', () => {
  it('answers 503 while NATS is down, then stores every retried event exactly once', async () => {
    await sim.place(h.base, { b: 'outage', c: 'c1' }, '14155550100');
    await waitFor(async () => (await h.messages(callEventSubject('outage'))).some((e) => e.status === 'ringing'), { timeoutMs: 15_000, message: 'ringing stored' });
    await nats.stop();
    await waitFor(() => sim.seen.some((s) => s.status === 503), { timeoutMs: 20_000, message: 'a webhook answered 503' });
    expect((await fetch(`${h.base}/readyz`)).status).toBe(503);
    await nats.restart();
    const [call] = await waitFor(() => sim.settled(1), { timeoutMs: 60_000, message: 'call played to the end' });
    expect(call?.outcome).toBe('answered_ack');
    const events = (await h.messages(callEventSubject('outage'))).map((e) => e.status);
    expect(events.sort()).toEqual(deliveredStatuses(call!));
    expect(events).toEqual(expect.arrayContaining(['started', 'ringing', 'answered', 'human', 'input', 'completed']));
    expect(call?.events.every((e) => e.delivered)).toBe(true);
    // The same events were refused first and accepted on a retry.
    const retried = sim.seen.filter((s) => s.status === 503).length;
    expect(retried).toBeGreaterThan(0);
    expect((await h.messages(keypressSubject('outage'))).map((k) => k.meaning)).toEqual(['acknowledge']);
  });
});
