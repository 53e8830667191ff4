import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSign, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { BROADCAST_CONTROL, BROADCAST_REQUEST, BUCKETS, STREAMS } from '@clarion/contracts';
import { waitFor } from '@clarion/testkit';
import type { NatsConnection } from '@clarion/nats';
import { startStack, type ServiceName, type Stack } from '../src/stack.js';
import { connect, requestBroadcast } from '../src/client.js';

// Promise 6: bad input anywhere gets a clear error or is dead-lettered, and changes nothing else.

const enc = new TextEncoder();
/** Hostile bodies: truncated, wrongly typed, deeply nested, huge, invalid UTF-8, injection-shaped. */
const HOSTILE: Record<string, Uint8Array> = {
  empty: new Uint8Array(),
  truncated: enc.encode('{"name":"x","message":{"text":'),
  notJson: enc.encode('hello <script>alert(1)</script>'),
  jsonNull: enc.encode('null'),
  jsonArray: enc.encode('[1,2,3]'),
  jsonString: enc.encode('"broadcast"'),
  numberWithLetters: enc.encode('12abc'),
  wrongTypes: enc.encode('{"name":123,"message":"x","audience":{"numbers":"+12025550100"},"broadcastId":7,"attempt":"one"}'),
  injection: enc.encode('{"broadcastId":{"$gt":""},"contactId":{"$ne":null},"action":"cancel","name":{"$where":"1"},"number":"+1\'; DROP TABLE x;--"}'),
  protoPollution: enc.encode('{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}'),
  deepArray: enc.encode(`${'['.repeat(20_000)}${']'.repeat(20_000)}`),
  deepObject: enc.encode(`${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`),
  hugeString: enc.encode(JSON.stringify({ name: 'x'.repeat(600_000), broadcastId: 'y'.repeat(100_000) })),
  invalidUtf8: Uint8Array.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]),
};

interface Snapshot {
  streams: Record<string, number>;
  kv: Record<string, number>;
  reporter: string;
}

/** An RS256 application JWT for voice-sim, signed with node:crypto (no extra dependency). */
function voiceJwt(applicationId: string, privateKeyPem: string): string {
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ application_id: applicationId, iat: now, exp: now + 600, jti: randomUUID() })}`;
  const signature = createSign('RSA-SHA256').update(body).sign(privateKeyPem).toString('base64url');
  return `${body}.${signature}`;
}

describe('bad input: every consumed subject and HTTP endpoint', () => {
  let stack: Stack;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let stateDir: string;
  let broadcastId: string;
  let listId: string;

  const auth = () => ({ authorization: `Bearer ${stack.secrets.apiToken}` });

  const snapshot = async (): Promise<Snapshot> => {
    const streams: Record<string, number> = {};
    for (const s of Object.values(STREAMS)) streams[s.name] = (await jsm.streams.info(s.name)).state.messages;
    const kv: Record<string, number> = {};
    const kvm = new Kvm(nc);
    for (const bucket of [BUCKETS.broadcasts, BUCKETS.control, BUCKETS.idempotency, BUCKETS.ledger]) {
      let n = 0;
      for await (const _key of await (await kvm.open(bucket)).keys()) n += 1;
      kv[bucket] = n;
    }
    const list = await (await fetch(`${stack.url('reporter')}/v1/broadcasts?limit=200`, { headers: auth() })).json();
    const summary = await (await fetch(`${stack.url('reporter')}/v1/broadcasts/${broadcastId}`, { headers: auth() })).json();
    const { items } = list as { items: { id: string; counts: unknown }[] };
    const s = summary as { counts: unknown; attempts: unknown; status: string };
    return { streams, kv, reporter: JSON.stringify({ ids: items.map((i) => i.id).sort(), counts: s.counts, attempts: s.attempts, status: s.status }) };
  };

  /** Every durable consumer has nothing pending and nothing awaiting ack (poison was term'd, not looping). */
  const consumersSettled = async () => {
    for (const s of Object.values(STREAMS)) {
      for (const info of await jsm.consumers.list(s.name).next()) {
        if (info.num_pending > 0 || info.num_ack_pending > 0) return false;
      }
    }
    return true;
  };

  const allReady = async () => {
    for (const name of ['contacts', 'reporter', 'webhook', 'dialer', 'voice-sim'] as ServiceName[]) {
      for (const service of stack.services[name]) {
        const response = await fetch(`${service.url}/readyz`);
        if (response.status !== 200) throw new Error(`${service.name} /readyz ${response.status}`);
      }
    }
    return true;
  };

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'clarion-bad-input-'));
    stack = await startStack({ stateDir, accountCps: 20, timeScale: 0.01, logLevel: 'warn', seed: 'bad-input' });
    nc = await connect(stack.natsUrl, 'bad-input-test');
    jsm = await jetstreamManager(nc);
    // One real broadcast, completed, so its subjects, consumers and reporter records exist.
    const reply = await requestBroadcast(nc, {
      name: 'bad input reference',
      message: { text: 'Reference broadcast.' },
      audience: { numbers: ['+12025550100', '+12025550106'] },
      retry: { maxAttempts: 1 },
    });
    if (!reply.ok) throw new Error(reply.error.message);
    broadcastId = reply.broadcastId;
    await waitFor(
      async () => {
        const r = await fetch(`${stack.url('reporter')}/v1/broadcasts/${broadcastId}`, { headers: auth() });
        return r.ok && ((await r.json()) as { status: string }).status === 'completed';
      },
      { timeoutMs: 60_000, intervalMs: 200, message: 'reference broadcast completed' },
    );
    const list = await fetch(`${stack.url('contacts')}/v1/lists`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bad input list' }),
    });
    listId = ((await list.json()) as { id: string }).id;
    await waitFor(consumersSettled, { timeoutMs: 30_000, intervalMs: 200, message: 'consumers settled before the attack' });
  });

  afterAll(async () => {
    await nc?.close();
    await stack?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('answers every hostile request on broadcast.request and broadcast.control with a clear error', async () => {
    const before = await snapshot();
    for (const subject of [BROADCAST_REQUEST, BROADCAST_CONTROL]) {
      for (const [kind, payload] of Object.entries(HOSTILE)) {
        const reply = await nc.request(subject, payload, { timeout: 10_000 });
        const body = reply.json<{ ok: boolean; error?: { code?: string; message?: string } }>();
        expect(body.ok, `${subject} ${kind}`).toBe(false);
        expect(typeof body.error?.code, `${subject} ${kind} error code`).toBe('string');
        expect(body.error?.message, `${subject} ${kind} error message`).toBeTruthy();
      }
    }
    await allReady();
    expect(await snapshot()).toEqual(before);
  });

  it('dead-letters hostile messages on every JetStream subject a service consumes', async () => {
    const js = jetstream(nc);
    const subjects = [
      'broadcast.submit',
      `dial.job.${broadcastId}`,
      `dial.retry.${broadcastId}`,
      'dial.job.b-doesnotexist',
      `evt.call.${broadcastId}`,
      `evt.keypress.${broadcastId}`,
      `evt.broadcast.${broadcastId}`,
      `evt.attempt.${broadcastId}`,
      `evt.contact.${broadcastId}`,
      'evt.call.b-doesnotexist',
    ];
    const before = await snapshot();
    let published: Record<string, number> = {};
    for (const subject of subjects) {
      for (const payload of Object.values(HOSTILE)) {
        await js.publish(subject, payload);
        const stream = subject.startsWith('evt.') ? STREAMS.events.name : subject.startsWith('dial.') ? STREAMS.dial.name : STREAMS.requests.name;
        published = { ...published, [stream]: (published[stream] ?? 0) + 1 };
      }
    }
    // Each poison message is term'd (or acked as ignorable): nothing stays pending or redelivers.
    await waitFor(consumersSettled, { timeoutMs: 60_000, intervalMs: 250, message: 'every consumer got past the poison' });
    await allReady();
    const after = await snapshot();
    // The streams hold exactly what was published; nothing else was written anywhere.
    const expected = { ...before, streams: Object.fromEntries(Object.entries(before.streams).map(([s, n]) => [s, n + (published[s] ?? 0)])) };
    expect(after).toEqual(expected);
    // Services said why they dropped the messages.
    const logs = [...stack.services.reporter, ...stack.services.dialer, ...stack.services.contacts].map((s) => s.tail(200)).join('\n');
    expect(logs).toMatch(/invalid|terminat|poison/i);
  });

  it('answers hostile HTTP bodies, parameters and content types with 4xx and a JSON error', async () => {
    const contacts = stack.url('contacts');
    const reporter = stack.url('reporter');
    const webhook = stack.url('webhook');
    const jsonBody = (kind: string) => HOSTILE[kind]!;
    const cases: { name: string; url: string; method: string; headers?: Record<string, string>; body?: Uint8Array | string }[] = [];
    const bodyKinds = Object.keys(HOSTILE);
    for (const kind of bodyKinds) {
      for (const [name, url, method] of [
        ['contacts create list', `${contacts}/v1/lists`, 'POST'],
        ['contacts patch list', `${contacts}/v1/lists/${listId}`, 'PATCH'],
        ['contacts add contact', `${contacts}/v1/lists/${listId}/contacts`, 'POST'],
        ['contacts suppression', `${contacts}/v1/suppressions`, 'POST'],
        ['reporter pause', `${reporter}/v1/broadcasts/${broadcastId}/pause`, 'POST'],
      ] as const) {
        // The pause body is optional and only `reason` is read, so an empty or object body is a valid pause:
        // the reporter gets its hostile cases below, with the hostile value in `reason`.
        if (name === 'reporter pause') continue;
        cases.push({ name: `${name} ${kind}`, url, method, headers: { ...auth(), 'content-type': 'application/json' }, body: jsonBody(kind) });
      }
    }
    for (const reason of ['{"reason":{"$gt":""}}', '{"reason":12}', `{"reason":"${'x'.repeat(100_000)}"}`, '{"reason":', 'null', '[]', '12abc']) {
      cases.push({ name: `reporter pause reason ${reason.slice(0, 20)}`, url: `${reporter}/v1/broadcasts/${broadcastId}/pause`, method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: reason });
    }
    cases.push(
      { name: 'contacts wrong content type', url: `${contacts}/v1/lists`, method: 'POST', headers: { ...auth(), 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=x' },
      { name: 'contacts import invalid utf8', url: `${contacts}/v1/lists/${listId}/import`, method: 'POST', headers: { ...auth(), 'content-type': 'text/csv' }, body: HOSTILE.invalidUtf8 },
      { name: 'contacts import json as csv type', url: `${contacts}/v1/lists/${listId}/import`, method: 'POST', headers: { ...auth(), 'content-type': 'application/pdf' }, body: 'x' },
      { name: 'contacts list injection id', url: `${contacts}/v1/lists/${encodeURIComponent('{"$gt":""}')}`, method: 'GET', headers: auth() },
      { name: 'contacts list paging letters', url: `${contacts}/v1/lists/${listId}/contacts?limit=12abc`, method: 'GET', headers: auth() },
      { name: 'reporter injection id', url: `${reporter}/v1/broadcasts/${encodeURIComponent('{"$gt":""}')}`, method: 'GET', headers: auth() },
      { name: 'reporter limit letters', url: `${reporter}/v1/broadcasts?limit=12abc`, method: 'GET', headers: auth() },
      { name: 'reporter bad cursor', url: `${reporter}/v1/broadcasts?cursor=${encodeURIComponent('{"$gt":""}')}`, method: 'GET', headers: auth() },
      { name: 'reporter state filter injection', url: `${reporter}/v1/broadcasts/${broadcastId}/contacts?state=${encodeURIComponent('{"$ne":null}')}`, method: 'GET', headers: auth() },
      { name: 'reporter export type', url: `${reporter}/v1/broadcasts/${broadcastId}/export.csv?type=${encodeURIComponent('$where')}`, method: 'GET', headers: auth() },
      { name: 'reporter attempts number injection', url: `${reporter}/v1/attempts?number=${encodeURIComponent('{"$gt":""}')}`, method: 'GET', headers: auth() },
      { name: 'reporter no token', url: `${reporter}/v1/broadcasts`, method: 'GET' },
      { name: 'contacts no token', url: `${contacts}/v1/lists`, method: 'GET' },
    );
    for (const kind of bodyKinds) {
      for (const path of ['/webhooks/event', '/webhooks/input', '/webhooks/answer']) {
        cases.push({ name: `webhook ${path} ${kind}`, url: `${webhook}${path}?b=${broadcastId}&c=%7B%22%24gt%22%3A%22%22%7D&a=1abc`, method: 'POST', headers: { 'content-type': 'application/json' }, body: HOSTILE[kind] });
      }
    }

    const before = await snapshot();
    const problems: string[] = [];
    for (const c of cases) {
      const response = await fetch(c.url, { method: c.method, headers: c.headers, body: c.body });
      const text = await response.text();
      const parsed = (() => {
        try {
          return JSON.parse(text) as { error?: { code?: string; message?: string } };
        } catch {
          return undefined;
        }
      })();
      if (response.status < 400 || response.status >= 500) problems.push(`${c.name}: HTTP ${response.status} ${text.slice(0, 120)}`);
      else if (typeof parsed?.error?.code !== 'string') problems.push(`${c.name}: HTTP ${response.status} without the JSON error shape: ${text.slice(0, 120)}`);
    }
    expect(problems).toEqual([]);
    await allReady();
    expect(await snapshot()).toEqual(before);
  });

  it('voice-sim rejects hostile create-call bodies with 4xx problem details and places nothing', async () => {
    const sim = stack.url('voice-sim');
    const token = voiceJwt(stack.secrets.applicationId, readFileSync(stack.secrets.privateKeyFile, 'utf8'));
    const statsBefore = (await (await fetch(`${sim}/_sim/stats`)).json()) as { calls_placed: number };
    const problems: string[] = [];
    for (const [kind, body] of Object.entries(HOSTILE)) {
      for (const contentType of ['application/json', 'text/plain']) {
        const response = await fetch(`${sim}/v1/calls`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body });
        const text = await response.text();
        if (response.status < 400 || response.status >= 500) problems.push(`${kind} (${contentType}): HTTP ${response.status} ${text.slice(0, 120)}`);
        else if (!/title|error|type/.test(text)) problems.push(`${kind} (${contentType}): HTTP ${response.status} without problem details`);
      }
    }
    const noToken = await fetch(`${sim}/v1/calls`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(noToken.status).toBe(401);
    expect(problems).toEqual([]);
    const statsAfter = (await (await fetch(`${sim}/_sim/stats`)).json()) as { calls_placed: number };
    expect(statsAfter.calls_placed).toBe(statsBefore.calls_placed);
    expect((await fetch(`${sim}/readyz`)).status).toBe(200);
  });
});
