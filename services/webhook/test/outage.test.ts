import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callEventSubject } from '@clarion/contracts';
import { startNatsServer, waitFor, type NatsServerHandle } from '@clarion/testkit';
import { startHarness, type Harness } from './harness.js';

let nats: NatsServerHandle;
let h: Harness;

beforeAll(async () => {
  nats = await startNatsServer();
  h = await startHarness(nats.url, { publishTimeoutMs: 500, publishDeadlineMs: 0 });
});
afterAll(async () => {
  await h?.close();
  await nats?.dispose();
});

const post = (status: string, timestamp: string) =>
  fetch(`${h.base}/webhooks/event?b=out&c=c1&a=1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ uuid: 'cccccccc-cccc-4ccc-8ccc-000000000001', status, timestamp }),
  });

describe('NATS outage', () => {
  it('answers 503 while JetStream is down, then stores the retried event exactly once', async () => {
    expect((await post('started', '2026-03-01T10:00:00.000Z')).status).toBe(204);
    await nats.stop();
    const failed = await post('answered', '2026-03-01T10:00:02.000Z');
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    expect((await fetch(`${h.base}/readyz`)).status).toBe(503);

    await nats.restart();
    // Vonage retries: the first retries may still meet a reconnecting client, the later ones succeed.
    await waitFor(async () => (await post('answered', '2026-03-01T10:00:02.000Z')).status === 204, {
      timeoutMs: 15_000,
      intervalMs: 100,
      message: 'event accepted after restart',
    });
    expect((await post('answered', '2026-03-01T10:00:02.000Z')).status).toBe(204);
    expect((await post('started', '2026-03-01T10:00:00.000Z')).status).toBe(204);
    const stored = await h.messages(callEventSubject('out'));
    expect(stored.map((e) => e.status)).toEqual(['started', 'answered']);
    await waitFor(async () => (await fetch(`${h.base}/readyz`)).status === 200, { message: 'ready again' });
  });

  it('holds an event across a NATS restart within the publish deadline and stores it once', async () => {
    const nats3 = await startNatsServer();
    const h3 = await startHarness(nats3.url, { publishTimeoutMs: 500, publishDeadlineMs: 20_000 });
    try {
      await nats3.stop();
      const url = `${h3.base}/webhooks/event?b=bridge&c=c1&a=1`;
      const held = fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ uuid: 'cccccccc-cccc-4ccc-8ccc-000000000003', status: 'completed', timestamp: '2026-03-01T10:00:09.000Z' }),
      });
      await waitFor(() => h3.webhook.inFlight() === 1, { message: 'request held' });
      await nats3.restart();
      expect((await held).status).toBe(204);
      expect((await h3.messages(callEventSubject('bridge'))).map((e) => e.status)).toEqual(['completed']);
    } finally {
      await h3.close();
      await nats3.dispose();
    }
  });

  it('on close, refuses new webhooks with 503 and lets the one in flight finish', async () => {
    const nats2 = await startNatsServer();
    const h2 = await startHarness(nats2.url, { publishTimeoutMs: 1500 });
    try {
      await nats2.stop();
      const url = `${h2.base}/webhooks/event?b=drain&c=c1&a=1`;
      const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uuid: 'u-1', status: 'started' }) };
      const inFlight = fetch(url, init);
      await waitFor(() => h2.webhook.inFlight() === 1, { message: 'request in flight' });
      const closing = h2.webhook.close();
      const refused = await fetch(url, init);
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('shutting_down');
      expect((await inFlight).status).toBe(503);
      await closing;
      expect(h2.webhook.inFlight()).toBe(0);
    } finally {
      await h2.close();
      await nats2.dispose();
    }
  });
});
