import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callEventSubject } from '@clarion/contracts';
import { startNatsServer, type NatsServerHandle } from '@clarion/testkit';
import { request, signWebhook, startHarness, type Harness } from './harness.js';
import { validateNcco } from './ncco-rules.js';

const SECRET = 'test-signature-secret-0123456789';
// A fixed clock: freshness is judged against it, never against the machine's time.
const NOW_MS = Date.parse('2026-03-01T10:00:00.000Z');
const NOW = NOW_MS / 1000;

let nats: NatsServerHandle;
let h: Harness;

beforeAll(async () => {
  nats = await startNatsServer();
  h = await startHarness(nats.url, { signatureSecret: SECRET, signatureMaxAgeSeconds: 300 }, () => NOW_MS);
  await h.putSpec('sig', request({ message: { text: 'Signed hello.' } }));
});
afterAll(async () => {
  await h?.close();
  await nats?.dispose();
});

const event = (status: string) =>
  JSON.stringify({ uuid: 'bbbbbbbb-bbbb-4bbb-8bbb-000000000001', conversation_uuid: 'CON-1', status, timestamp: '2026-03-01T09:59:59.000Z' });

async function postEvent(body: string, authorization?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (authorization) headers.authorization = authorization;
  return fetch(`${h.base}/webhooks/event?b=sig&c=c1&a=1`, { method: 'POST', headers, body });
}

describe('signed webhooks', () => {
  it('accepts a correctly signed event and a signed GET answer (hash of the empty body)', async () => {
    const body = event('started');
    expect((await postEvent(body, `Bearer ${await signWebhook(SECRET, body, NOW - 2)}`)).status).toBe(204);
    const res = await fetch(`${h.base}/webhooks/answer?b=sig&c=c1&a=1`, {
      headers: { authorization: `Bearer ${await signWebhook(SECRET, '', NOW)}` },
    });
    expect(res.status).toBe(200);
    expect(validateNcco(await res.json())).toEqual([]);
    expect(await h.messages(callEventSubject('sig'))).toHaveLength(1);
  });

  it('refuses forged, stale, future, unsigned and body-swapped requests with 401 and publishes nothing', async () => {
    const body = event('ringing');
    const cases: [string, () => Promise<Response>, string][] = [
      ['wrong secret', async () => postEvent(body, `Bearer ${await signWebhook('another-secret', body, NOW)}`), 'bad_signature'],
      ['stale iat', async () => postEvent(body, `Bearer ${await signWebhook(SECRET, body, NOW - 301)}`), 'stale'],
      ['iat in the future', async () => postEvent(body, `Bearer ${await signWebhook(SECRET, body, NOW + 600)}`), 'future'],
      ['unsigned', async () => postEvent(body), 'missing'],
      ['garbage token', async () => postEvent(body, 'Bearer not.a.jwt'), 'bad_signature'],
      ['body swapped', async () => postEvent(event('answered'), `Bearer ${await signWebhook(SECRET, body, NOW)}`), 'hash_mismatch'],
      [
        'unsigned answer',
        async () => fetch(`${h.base}/webhooks/answer?b=sig&c=c1&a=1`),
        'missing',
      ],
      [
        'input signed for another body',
        async () =>
          fetch(`${h.base}/webhooks/input?b=sig&c=c1&a=1`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${await signWebhook(SECRET, '{}', NOW)}` },
            body: JSON.stringify({ uuid: 'u', dtmf: { digits: '1' } }),
          }),
        'hash_mismatch',
      ],
    ];
    for (const [name, send, reason] of cases) {
      const res = await send();
      expect(res.status, name).toBe(401);
      const err = (await res.json()) as { error: { code: string; details: { reason: string } } };
      expect(err.error, name).toMatchObject({ code: 'unauthorized', details: { reason } });
    }
    expect((await h.messages(callEventSubject('sig'))).map((e) => e.status)).toEqual(['started']);
    const metrics = await (await fetch(`${h.base}/metrics`)).text();
    expect(metrics).toMatch(/webhook_requests_total\{route="\/webhooks\/event",status="401",service="webhook"\} [1-9]/);
    for (const reason of ['bad_signature', 'stale', 'future', 'missing', 'hash_mismatch']) {
      expect(metrics).toMatch(new RegExp(`webhook_refused_total\\{reason="${reason}",service="webhook"\\} [1-9]`));
    }
  });
});
