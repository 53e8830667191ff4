import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callEventSubject, keypressSubject, CallEvent, KeypressEvent } from '@clarion/contracts';
import { startNatsServer, waitFor, type NatsServerHandle } from '@clarion/testkit';
import { b64, request, startHarness, type Harness } from './harness.js';
import { validateNcco } from './ncco-rules.js';

let nats: NatsServerHandle;
let h: Harness;

beforeAll(async () => {
  nats = await startNatsServer();
  h = await startHarness(nats.url, { maxBodyBytes: 2048 });
  await h.putSpec('ackb', request({ acknowledgement: { prompt: 'Press 1 to confirm, 2 to hear it again, 9 to stop.', key: '1', repeatKey: '2', optOutKey: '9', timeoutSeconds: 5 } }));
});
afterAll(async () => {
  await h?.close();
  await nats?.dispose();
});

const UUID = 'aaaaaaaa-bbbb-4ccc-8ddd-000000000001';
const CONV = 'CON-aaaaaaaa-bbbb-4ccc-8ddd-000000000001';

async function post(path: string, body: unknown, contentType = 'application/json'): Promise<Response> {
  return fetch(`${h.base}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const base = (status: string, timestamp: string) => ({
  from: '14155550199',
  to: '14155550100',
  uuid: UUID,
  conversation_uuid: CONV,
  status,
  direction: 'outbound',
  timestamp,
  headers: {},
});

describe('event webhook', () => {
  it('publishes every status of an answered call, normalised, after JetStream stored it', async () => {
    const q = '/webhooks/event?b=seq1&c=c1&a=1';
    const payloads = [
      base('started', '2026-03-01T10:00:00.000Z'),
      base('ringing', '2026-03-01T10:00:00.000Z'),
      { ...base('answered', '2026-03-01T10:00:03.100Z'), start_time: null, rate: null, network: null },
      { call_uuid: UUID, conversation_uuid: CONV, status: 'machine', sub_state: 'beep_start', timestamp: '2026-03-01T10:00:07.000Z' },
      {
        ...base('completed', '2026-03-01T10:00:20.712Z'),
        end_time: '2026-03-01T10:00:20.000Z',
        network: 'US-VIRTUAL-LEVEL3',
        duration: '17',
        start_time: '2026-03-01T10:00:03.000Z',
        rate: '0.00450000',
        price: '0.00127500',
        sip_code: '200',
        disconnected_by: 'user',
      },
    ];
    for (const p of payloads) expect((await post(q, p)).status).toBe(204);
    // The reply came after the ack, so the events are already in the stream.
    const stored = await h.messages(callEventSubject('seq1'));
    expect(stored.map((e) => e.status)).toEqual(['started', 'ringing', 'answered', 'machine', 'completed']);
    for (const e of stored) expect(CallEvent.safeParse(e).success).toBe(true);
    expect(stored[0]).toMatchObject({ kind: 'call', broadcastId: 'seq1', contactId: 'c1', attempt: 1, uuid: UUID, conversationUuid: CONV, timestamp: '2026-03-01T10:00:00.000Z' });
    expect(stored[3]).toMatchObject({ uuid: UUID, status: 'machine', subState: 'beep_start' });
    expect(stored[4]).toMatchObject({ duration: 17, rate: 0.0045, price: 0.001275, sipCode: 200 });
    expect(stored[4]?.raw).toEqual(payloads[4]);
  });

  it('keeps detail and sip_code of failures, error events and unknown statuses', async () => {
    const q = '/webhooks/event?b=seq2&c=c1&a=3';
    expect((await post(q, { ...base('rejected', '2026-03-01T11:00:00.000Z'), detail: 'invalid_number', sip_code: '603' })).status).toBe(204);
    expect((await post(q, { reason: 'Syntax error in NCCO. Invalid value type or action.', conversation_uuid: CONV, timestamp: '2026-03-01T11:00:01.000Z' })).status).toBe(204);
    expect((await post(q, base('teleported', '2026-03-01T11:00:02.000Z'))).status).toBe(204);
    const stored = await h.messages(callEventSubject('seq2'));
    expect(stored[0]).toMatchObject({ status: 'rejected', detail: 'invalid_number', sipCode: 603, attempt: 3 });
    expect(stored[1]).toMatchObject({ status: 'error', uuid: CONV, reason: 'Syntax error in NCCO. Invalid value type or action.' });
    expect(stored[2]).toMatchObject({ status: 'teleported', raw: { status: 'teleported' } });
  });

  it('accepts GET events (event_method GET) from the query string', async () => {
    const res = await fetch(`${h.base}/webhooks/event?b=seq3&c=c1&a=1&uuid=${UUID}&status=busy&sip_code=486&timestamp=2026-03-01T12:00:00.000Z`);
    expect(res.status).toBe(204);
    const [stored] = await h.messages(callEventSubject('seq3'));
    expect(stored).toMatchObject({ status: 'busy', sipCode: 486, raw: { uuid: UUID, status: 'busy', sip_code: '486', timestamp: '2026-03-01T12:00:00.000Z' } });
  });

  it('stores a redelivered event once and accepts events out of order', async () => {
    const q = '/webhooks/event?b=seq4&c=c1&a=1';
    const completed = { ...base('completed', '2026-03-01T13:00:09.000Z'), duration: '5' };
    const answered = base('answered', '2026-03-01T13:00:03.000Z');
    const same = base('ringing', '2026-03-01T13:00:00.000Z');
    for (const p of [completed, completed, answered, same, base('started', '2026-03-01T13:00:00.000Z'), answered, completed]) {
      expect((await post(q, p)).status).toBe(204);
    }
    const stored = await h.messages(callEventSubject('seq4'));
    expect(stored.map((e) => e.status)).toEqual(['completed', 'answered', 'ringing', 'started']);
    const metrics = await (await fetch(`${h.base}/metrics`)).text();
    expect(metrics).toMatch(/webhook_events_published_total\{kind="call",duplicate="true",service="webhook"\} [1-9]/);
  });

  it('uses the receive time when the event has no timestamp', async () => {
    const before = Date.now();
    expect((await post('/webhooks/event?b=seq5&c=c1&a=1', { uuid: UUID, status: 'started' })).status).toBe(204);
    const [stored] = await h.messages(callEventSubject('seq5'));
    expect(Date.parse(String(stored?.timestamp))).toBeGreaterThanOrEqual(before - 1000);
    expect(stored?.timestamp).toBe(stored?.receivedAt);
  });

  it('accepts content types with parameters and odd casing', async () => {
    const res = await post('/webhooks/event?b=seq6&c=c1&a=1', base('started', '2026-03-01T14:00:00.000Z'), 'Application/JSON; charset=utf-8');
    expect(res.status).toBe(204);
    expect(await h.messages(callEventSubject('seq6'))).toHaveLength(1);
  });

  it('accepts form-encoded events', async () => {
    const res = await post('/webhooks/event?b=seq7&c=c1&a=1', `uuid=${UUID}&status=timeout&timestamp=2026-03-01T14:00:00.000Z`, 'application/x-www-form-urlencoded');
    expect(res.status).toBe(204);
    expect(await h.messages(callEventSubject('seq7'))).toMatchObject([{ status: 'timeout', uuid: UUID }]);
  });

  it('refuses bad requests with a clear error and publishes nothing', async () => {
    const q = '/webhooks/event?b=bad&c=c1&a=1';
    const cases: [string, () => Promise<Response>, number, string][] = [
      ['empty body', () => post(q, ''), 400, 'empty_body'],
      ['bad JSON', () => post(q, '{"status": "started",'), 400, 'invalid_json'],
      ['not an object', () => post(q, '[1,2]'), 400, 'invalid_event'],
      ['no uuid', () => post(q, { status: 'started', timestamp: '2026-03-01T10:00:00.000Z' }), 400, 'invalid_event'],
      ['oversize', () => post(q, { ...base('started', '2026-03-01T10:00:00.000Z'), pad: 'x'.repeat(4096) }), 413, 'body_too_large'],
      ['wrong type', () => post(q, 'status=started', 'text/plain'), 415, 'unsupported_media_type'],
      ['missing b', () => post('/webhooks/event?c=c1&a=1', base('started', '2026-03-01T10:00:00.000Z')), 400, 'invalid_request'],
      ['invalid a', () => post('/webhooks/event?b=bad&c=c1&a=-1', base('started', '2026-03-01T10:00:00.000Z')), 400, 'invalid_request'],
    ];
    for (const [name, send, status, code] of cases) {
      const res = await send();
      expect(res.status, name).toBe(status);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code, name).toBe(code);
      expect(body.error.message.length, name).toBeGreaterThan(5);
    }
    expect(await h.messages(callEventSubject('bad'))).toHaveLength(0);
  });
});

describe('input webhook', () => {
  const input = (digits: string | null, r?: number, ts = '2026-03-01T15:00:00.000Z') =>
    post(`/webhooks/input?b=ackb&c=k1&a=1&v=${b64({ name: 'Ada', language: 'en-GB' })}${r ? `&r=${r}` : ''}`, {
      speech: { results: [] },
      dtmf: { digits, timed_out: digits === null },
      from: '14155550199',
      to: '14155550100',
      uuid: UUID,
      conversation_uuid: CONV,
      timestamp: ts,
    });

  it('records an acknowledgement and thanks the person in their language', async () => {
    const res = await input('1');
    expect(res.status).toBe(200);
    const ncco = await res.json();
    expect(validateNcco(ncco)).toEqual([]);
    expect(ncco).toEqual([{ action: 'talk', text: 'Thank you, your confirmation is recorded.', language: 'en-GB', style: 0 }]);
    const [call] = await h.messages(callEventSubject('ackb'));
    expect(call).toMatchObject({ status: 'input', digits: '1', contactId: 'k1' });
    const [key] = await h.messages(keypressSubject('ackb'));
    expect(KeypressEvent.parse(key)).toMatchObject({ meaning: 'acknowledge', digits: '1', number: '+14155550100', uuid: UUID });
  });

  it('plays the message again for the repeat key, then prompts again', async () => {
    const ncco = (await (await input('2', undefined, '2026-03-01T15:00:01.000Z')).json()) as { action: string; text?: string }[];
    expect(validateNcco(ncco)).toEqual([]);
    expect(ncco.map((a) => a.action)).toEqual(['talk', 'talk', 'input']);
    expect(ncco[0]?.text).toBe('Hello Ada, water is off in  until .');
    expect(new URL((ncco[2] as { eventUrl?: string[] }).eventUrl?.[0] ?? '').searchParams.get('r')).toBe('1');
  });

  it('ends with a goodbye after the third repeat instead of prompting for ever (fresh-user finding)', async () => {
    const third = (await (await input('2', 2, '2026-03-01T15:00:01.500Z')).json()) as { action: string; eventUrl?: string[] }[];
    expect(third.map((a) => a.action)).toEqual(['talk', 'talk', 'input']);
    expect(new URL(third[2]?.eventUrl?.[0] ?? '').searchParams.get('r')).toBe('3');
    const last = (await (await input('2', 3, '2026-03-01T15:00:01.600Z')).json()) as { action: string; text?: string }[];
    expect(validateNcco(last)).toEqual([]);
    expect(last.map((a) => a.action)).toEqual(['talk', 'talk']);
    expect(last[1]?.text).toBe('Goodbye.');
  });

  it('says goodbye for the opt-out key', async () => {
    const ncco = (await (await input('9', undefined, '2026-03-01T15:00:02.000Z')).json()) as { text?: string }[];
    expect(validateNcco(ncco)).toEqual([]);
    expect(ncco[0]?.text).toMatch(/Goodbye/);
  });

  it('prompts once more after silence or a wrong key, then says goodbye', async () => {
    const first = (await (await input(null, undefined, '2026-03-01T15:00:03.000Z')).json()) as { action: string; eventUrl?: string[] }[];
    expect(validateNcco(first)).toEqual([]);
    expect(first.map((a) => a.action)).toEqual(['talk', 'input']);
    expect(new URL(first[1]?.eventUrl?.[0] ?? '').searchParams.get('r')).toBe('1');
    const second = (await (await input('5', 1, '2026-03-01T15:00:04.000Z')).json()) as { text?: string }[];
    expect(second).toEqual([{ action: 'talk', text: 'Goodbye.', language: 'en-GB', style: 0 }]);
    const meanings = (await h.messages(keypressSubject('ackb'))).map((k) => k.meaning);
    expect(meanings).toEqual(['acknowledge', 'repeat', 'repeat', 'repeat', 'opt_out', 'none', 'other']);
  });
});
