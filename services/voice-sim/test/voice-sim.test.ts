import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vonage } from '@vonage/server-sdk';
import { verifySignature } from '@vonage/jwt';
import { decodeJwt } from 'jose';
import { waitFor } from '@clarion/testkit';
import { APP_ID, appToken, callBody, keys, manualClock, otherKeys, startReceiver, startSim, type GroundTruthCall } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(sim: Parameters<typeof startSim>[0] = {}, extra: Parameters<typeof startSim>[1] = {}, handler?: Parameters<typeof startReceiver>[0]) {
  const receiver = await startReceiver(handler);
  const h = await startSim(sim, extra);
  cleanups.push(receiver.close, h.close);
  return { receiver, h };
}

/** Wait until every placed call ended and every queued webhook was attempted. */
async function settled(h: Awaited<ReturnType<typeof startSim>>, count: number): Promise<GroundTruthCall[]> {
  return waitFor(async () => {
    const calls = await h.calls();
    return calls.length === count && calls.every((c) => c.ended_at !== null && c.events.every((e) => e.attempts > 0)) ? calls : undefined;
  }, { timeoutMs: 10_000, message: 'calls did not settle' });
}

const statuses = (c: GroundTruthCall) => c.events.filter((e) => !e.duplicate).map((e) => e.status);

describe('official SDK against voice-sim', () => {
  it('creates a call, gets its details and hangs it up (400 within 2 s, then 204)', async () => {
    const clock = manualClock();
    const { receiver, h } = await setup({ timeScale: 1, overrides: [{ match: '14155550117', outcome: 'no_answer', ringSec: 60 }] }, { clock });
    const vonage = new Vonage({ applicationId: APP_ID, privateKey: keys.privateKey }, { apiHost: h.base });
    const created = await vonage.voice.createOutboundCall({
      to: [{ type: 'phone', number: '14155550117' }],
      from: { type: 'phone', number: '14155550100' },
      ncco: [{ action: 'talk', text: 'hello' }],
      eventUrl: [`${receiver.base}/event`],
    } as Parameters<typeof vonage.voice.createOutboundCall>[0]);
    expect(created.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.status).toBe('started');
    expect(created.conversationUUID).toMatch(/^CON-/);
    const detail = await vonage.voice.getCall(created.uuid);
    expect(detail.uuid).toBe(created.uuid);
    await expect(vonage.voice.hangupCall(created.uuid)).rejects.toThrow(/400/);
    clock.advance(2000);
    await vonage.voice.hangupCall(created.uuid);
    const [call] = await settled(h, 1);
    // Hung up while ringing (or before): cancelled, then completed; never answered.
    expect(statuses(call!).slice(-2)).toEqual(['cancelled', 'completed']);
    expect(statuses(call!)).not.toContain('answered');
    const page = await vonage.voice.getCallsPage({ pageSize: 10 } as Parameters<typeof vonage.voice.getCallsPage>[0]);
    expect(page._embedded?.calls?.length).toBe(1);
    await expect(vonage.voice.getCall('00000000-0000-4000-8000-000000000000')).rejects.toThrow(/404/);
  });

  it('refuses tokens signed with another key, for another app, or badly timed (401 problem+json)', async () => {
    const { receiver, h } = await setup();
    const body = callBody('14155550101', receiver.base);
    const now = Math.floor(Date.now() / 1000);
    for (const token of [
      await appToken({ key: otherKeys.privateKey }),
      await appToken({ claims: { application_id: 'someone-else' } }),
      await appToken({ claims: { exp: now - 120 } }),
      await appToken({ claims: { exp: now + 25 * 3600 } }),
      await appToken({ claims: { jti: undefined } }),
      'not-a-jwt',
    ]) {
      const res = await h.create(body, token);
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    const noHeader = await fetch(`${h.base}/v1/calls`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(noHeader.status).toBe(401);
    // 20 s of clock skew is fine, and a token can be reused until it expires.
    const skewed = await appToken({ iat: now + 20 });
    expect((await h.create(body, skewed)).status).toBe(201);
    expect((await h.create(callBody('14155550102', receiver.base), skewed)).status).toBe(201);
  });
});

describe('validation', () => {
  it('answers 400 with invalid_parameters naming the field', async () => {
    const { receiver, h } = await setup({ cps: 0 });
    const good = callBody('14155550101', receiver.base);
    const cases: [Record<string, unknown>, string][] = [
      [{ ...good, to: { type: 'phone', number: '14155550101' } }, 'to'],
      [{ ...good, to: [] }, 'to'],
      [{ ...good, to: [{ type: 'phone', number: '+14155550101' }] }, 'to[0].number'],
      [{ ...good, to: [{ type: 'phone', number: '123' }] }, 'to[0].number'],
      [{ ...good, from: undefined }, 'from'],
      [{ ...good, random_from_number: true }, 'from'],
      [{ ...good, answer_url: ['http://127.0.0.1/answer'] }, 'answer_url'],
      [{ ...good, ncco: undefined }, 'answer_url'],
      [{ ...good, ncco: undefined, answer_url: 'http://127.0.0.1/answer' }, 'answer_url'],
      [{ ...good, event_url: `${receiver.base}/event` }, 'event_url'],
      [{ ...good, event_url: undefined }, 'event_url'],
      [{ ...good, length_timer: 0 }, 'length_timer'],
      [{ ...good, length_timer: 86401 }, 'length_timer'],
      [{ ...good, ringing_timer: 121 }, 'ringing_timer'],
      [{ ...good, machine_detection: 'maybe' }, 'machine_detection'],
      [{ ...good, advanced_machine_detection: { behavior: 'continue', mode: 'detect_beep', beep_timeout: 40 } }, 'advanced_machine_detection.beep_timeout'],
      [{ ...good, advanced_machine_detection: { behavior: 'jump', mode: 'detect' } }, 'advanced_machine_detection.behavior'],
    ];
    for (const [body, name] of cases) {
      const res = await h.create(body);
      expect(res.status, name).toBe(400);
      const problem = (await res.json()) as { type: string; title: string; invalid_parameters: { name: string; reason: string }[] };
      expect(problem.title).toBe('Bad Request');
      expect(problem.invalid_parameters.map((p) => p.name), JSON.stringify(body)).toContain(name);
    }
    const bad = await fetch(`${h.base}/v1/calls`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await appToken()}` }, body: '{not json' });
    expect(bad.status).toBe(400);
    expect((await h.stats()).calls_placed).toBe(0);
  });

  it('accepts beep_timeout 30 when the spec minimum is chosen', async () => {
    const { receiver, h } = await setup({ validation: { beepTimeoutMin: 30 } });
    const res = await h.create({ ...callBody('14155550101', receiver.base), advanced_machine_detection: { behavior: 'continue', mode: 'detect_beep', beep_timeout: 30 } });
    expect(res.status).toBe(201);
  });

  it('ends the call with the NCCO error event for each invalid NCCO', async () => {
    const { receiver, h } = await setup({ cps: 0, overrides: [{ match: '*', outcome: 'answered' }] });
    const invalid: unknown[] = [
      [{ action: 'dance' }],
      [{ action: 'talk' }],
      [{ action: 'talk', text: 'x'.repeat(1501) }],
      [{ action: 'talk', text: 'hi', bargeIn: true }, { action: 'talk', text: 'no input follows' }],
      [{ action: 'connect', endpoint: [{ type: 'phone', number: '14155550101' }, { type: 'phone', number: '14155550102' }] }],
      [{ action: 'input' }],
      [{ action: 'talk', text: 5 }],
    ];
    for (const [i, ncco] of invalid.entries()) {
      expect((await h.create({ ...callBody(`1415555010${i}`, receiver.base), ncco })).status).toBe(201);
    }
    const calls = await settled(h, invalid.length);
    for (const call of calls) {
      const errors = receiver.received.filter((r) => r.json?.reason !== undefined && r.json?.conversation_uuid === call.conversation_uuid);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.json).toMatchObject({ reason: 'Syntax error in NCCO. Invalid value type or action.' });
      expect(errors[0]!.json!.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });
});

describe('outcomes and event sequences', () => {
  it('plays every last-digit outcome with the documented sequence', async () => {
    const { receiver, h } = await setup({ cps: 0 });
    for (let d = 0; d <= 9; d += 1) expect((await h.create(callBody(`1415555010${d}`, receiver.base, { machine_detection: 'continue' }))).status).toBe(201);
    const calls = await settled(h, 10);
    const byDigit = (d: number) => calls.find((c) => c.to === `1415555010${d}`)!;
    const answered = ['started', 'ringing', 'answered', 'human', 'input', 'completed'];
    for (const d of [0, 1, 2, 3]) {
      expect(statuses(byDigit(d))).toEqual(answered);
      expect(byDigit(d).digits).toBe('1');
    }
    expect(statuses(byDigit(4))).toEqual(answered);
    expect(byDigit(4).digits).toBeNull();
    expect(statuses(byDigit(5))).toEqual(['started', 'ringing', 'answered', 'machine', 'input', 'completed']);
    expect(statuses(byDigit(6))).toEqual(['started', 'ringing', 'busy', 'completed']);
    expect(statuses(byDigit(7))).toEqual(['started', 'ringing', 'unanswered', 'completed']);
    expect(statuses(byDigit(8))).toEqual(['started', 'failed', 'completed']);
    expect(statuses(byDigit(9))).toEqual(['started', 'rejected']);
    const events = receiver.events();
    const completed = events.find((e) => e.json?.status === 'completed' && e.json?.to === '14155550100')!.json!;
    for (const k of ['duration', 'rate', 'price', 'start_time', 'end_time', 'network', 'disconnected_by']) expect(typeof completed[k], k).toBe('string');
    expect(completed.direction).toBe('outbound');
    const machine = events.find((e) => e.json?.status === 'machine')!.json!;
    expect(machine.call_uuid).toBe(byDigit(5).uuid);
    expect(machine.uuid).toBeUndefined();
    expect(events.find((e) => e.json?.status === 'unanswered')!.json!.detail).toBe('timeout');
    for (const e of events) expect(e.headers['content-type']).toBe('application/json');
  });

  it('sends timeout when ringing_timer expires, and cancelled/invalid_number by override', async () => {
    const { receiver, h } = await setup({ overrides: [{ match: '1415555011?', outcome: 'invalid_number' }, { match: '/^1415555012/', outcome: 'cancelled' }] });
    await h.create(callBody('14155550107', receiver.base, { ringing_timer: 20 }));
    await h.create(callBody('14155550113', receiver.base));
    await h.create(callBody('14155550121', receiver.base));
    const calls = await settled(h, 3);
    expect(statuses(calls[0]!)).toEqual(['started', 'ringing', 'timeout', 'completed']);
    expect(statuses(calls[1]!)).toEqual(['started', 'rejected']);
    expect(receiver.events(calls[1]!.uuid).at(-1)!.json!.detail).toBe('invalid_number');
    expect(statuses(calls[2]!)).toEqual(['started', 'ringing', 'cancelled', 'completed']);
  });
});

describe('machine detection', () => {
  it('hangs up on a machine, and reports beep_start in detect_beep mode', async () => {
    const { receiver, h } = await setup({ cps: 0, durations: { beepSec: 50 } });
    await h.create(callBody('14155550105', receiver.base, { machine_detection: 'hangup' }));
    await h.create(callBody('14155550115', receiver.base, { advanced_machine_detection: { behavior: 'continue', mode: 'detect_beep', beep_timeout: 60 } }));
    await h.create(callBody('14155550125', receiver.base, { advanced_machine_detection: { behavior: 'continue', mode: 'detect_beep', beep_timeout: 45 } }));
    await h.create(callBody('14155550135', receiver.base, { advanced_machine_detection: { behavior: 'hangup', mode: 'detect' } }));
    const calls = await settled(h, 4);
    expect(statuses(calls[0]!)).toEqual(['started', 'ringing', 'answered', 'machine', 'completed']);
    expect(statuses(calls[1]!)).toEqual(['started', 'ringing', 'answered', 'machine', 'machine', 'input', 'completed']);
    expect(receiver.events(calls[1]!.uuid).filter((e) => e.json?.status === 'machine').map((e) => e.json!.sub_state)).toEqual([undefined, 'beep_start']);
    expect(receiver.events(calls[2]!.uuid).filter((e) => e.json?.status === 'machine').map((e) => e.json!.sub_state)).toEqual([undefined, 'beep_timeout']);
    expect(statuses(calls[3]!)).toEqual(['started', 'ringing', 'answered', 'machine', 'completed']);
  });
});

describe('answer webhook and DTMF', () => {
  it('GETs the answer URL, posts the DTMF input and plays the reply NCCO', async () => {
    const { receiver, h } = await setup({}, {}, (r, res) => {
      res.setHeader('content-type', 'application/json');
      if (r.path === '/answer') return void res.end(JSON.stringify([{ action: 'talk', text: 'Press 1' }, { action: 'input', type: ['dtmf'], dtmf: { maxDigits: 1 }, eventUrl: [`${receiver.base}/input`] }]));
      if (r.path === '/input') return void res.end(JSON.stringify([{ action: 'talk', text: 'Thank you' }]));
      res.statusCode = 204;
      res.end();
    });
    const body = { ...callBody('14155550102', receiver.base), ncco: undefined, answer_url: [`${receiver.base}/answer?b=B1&c=C1`] };
    expect((await h.create(body)).status).toBe(201);
    const [call] = await settled(h, 1);
    const answer = receiver.received.find((r) => r.path === '/answer')!;
    expect(answer.method).toBe('GET');
    expect(answer.query.get('b')).toBe('B1');
    for (const k of ['to', 'from', 'uuid', 'conversation_uuid', 'region_url', 'endpoint_type']) expect(answer.query.get(k), k).toBeTruthy();
    const input = receiver.received.find((r) => r.path === '/input')!.json!;
    expect(input).toMatchObject({ dtmf: { digits: '1', timed_out: false }, speech: { results: [] }, uuid: call!.uuid, to: '14155550102', from: '14155550100' });
    expect(statuses(call!)).toEqual(['started', 'ringing', 'answered', 'input', 'completed']);
    expect(Number(receiver.events(call!.uuid).at(-1)!.json!.duration)).toBeGreaterThan(0);
  });

  it('POSTs JSON to the answer URL when answer_method is POST', async () => {
    const { receiver, h } = await setup({}, {}, (r, res) => {
      if (r.path === '/answer') return void res.end(JSON.stringify([{ action: 'talk', text: 'hi' }]));
      res.statusCode = 204;
      res.end();
    });
    await h.create({ ...callBody('14155550102', receiver.base), ncco: undefined, answer_url: [`${receiver.base}/answer`], answer_method: 'POST' });
    await settled(h, 1);
    const answer = receiver.received.find((r) => r.path === '/answer')!;
    expect(answer.method).toBe('POST');
    expect(answer.json).toMatchObject({ to: '14155550102', endpoint_type: 'phone' });
  });

  it('times out on the answer URL, retries, uses the fallback, then ends the call', async () => {
    const { receiver, h } = await setup({ webhooks: { answerTimeoutMs: 150 } }, {}, (r, res) => {
      if (r.path === '/answer' || r.path === '/fallback') return; // never answers
      res.statusCode = 204;
      res.end();
    });
    await fetch(`${h.base}/_sim/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ webhooks: { fallbackAnswerUrl: `${receiver.base}/fallback` } }) });
    await h.create({ ...callBody('14155550102', receiver.base), ncco: undefined, answer_url: [`${receiver.base}/answer`] });
    const [call] = await settled(h, 1);
    expect(receiver.received.filter((r) => r.path === '/answer')).toHaveLength(2);
    const fallbacks = receiver.received.filter((r) => r.path === '/fallback');
    expect(fallbacks).toHaveLength(2);
    expect(fallbacks[0]!.query.get('reason')).toMatch(/timed out/);
    expect(call!.answer).toMatchObject({ attempts: 4, fallback: true, ok: false });
    expect(statuses(call!)).toEqual(['started', 'ringing', 'answered', 'completed']);
  });
});

describe('signed webhooks', () => {
  it('signs every webhook with HS256; @vonage/jwt verifies it and payload_hash matches the body', async () => {
    const secret = 'sim-signature-secret-0123456789abcdef';
    const { receiver, h } = await setup({}, { signatureSecret: secret }, (r, res) => {
      if (r.path === '/answer') return void res.end(JSON.stringify([{ action: 'input', type: ['dtmf'], dtmf: { maxDigits: 1 } }]));
      res.statusCode = 204;
      res.end();
    });
    await h.create({ ...callBody('14155550103', receiver.base), ncco: undefined, answer_url: [`${receiver.base}/answer`] });
    await settled(h, 1);
    expect(receiver.received.length).toBeGreaterThan(5);
    for (const r of receiver.received) {
      const token = String(r.headers.authorization).replace(/^Bearer /, '');
      expect(verifySignature(token, secret)).toBe(true);
      expect(verifySignature(token, 'wrong-secret')).toBe(false);
      const claims = decodeJwt(token);
      expect(claims).toMatchObject({ iss: 'Vonage', api_key: 'simkey', application_id: APP_ID });
      expect(claims.jti).toBeTruthy();
      expect(claims.payload_hash).toBe(createHash('sha256').update(r.body).digest('hex'));
    }
    expect(receiver.received.some((r) => r.json?.dtmf)).toBe(true);
  });
});

describe('rate limits', () => {
  it('answers 429 above CPS in any rolling second, counted with the injected clock', async () => {
    const clock = manualClock();
    const { receiver, h } = await setup({ cps: 3 }, { clock });
    const create = (n: number) => h.create(callBody(`141555501${String(n).padStart(2, '0')}`, receiver.base));
    expect((await create(1)).status).toBe(201);
    clock.advance(400);
    expect((await create(2)).status).toBe(201);
    expect((await create(3)).status).toBe(201);
    expect((await create(4)).status).toBe(429);
    clock.advance(599); // 999 ms after the first call
    expect((await create(5)).status).toBe(429);
    clock.advance(1); // the first call left the window
    expect((await create(6)).status).toBe(201);
    expect((await create(7)).status).toBe(429);
    clock.advance(400);
    expect((await create(8)).status).toBe(201);
    expect((await create(9)).status).toBe(201);
    const stats = await h.stats();
    expect(stats).toMatchObject({ calls_placed: 6, rejected_429: 3, max_calls_in_rolling_second: 3 });
    const res429 = await create(10);
    expect(res429.headers.get('content-type')).toContain('problem+json');
  });

  it('limits the other /v1 endpoints to 15 requests per second', async () => {
    const clock = manualClock();
    const { h } = await setup({}, { clock });
    const token = await appToken();
    const codes: number[] = [];
    for (let i = 0; i < 16; i += 1) codes.push((await fetch(`${h.base}/v1/calls`, { headers: { authorization: `Bearer ${token}` } })).status);
    expect(codes.filter((c) => c === 200)).toHaveLength(15);
    expect(codes.at(-1)).toBe(429);
    clock.advance(1000);
    expect((await fetch(`${h.base}/v1/calls`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });
});

describe('faults', () => {
  it('5xx on create places nothing; timeout-after-place resets the request but the call plays', async () => {
    const { receiver, h } = await setup({ overrides: [{ match: '14155550150', createStatus: 503 }, { match: '14155550151', timeoutAfterPlace: 'reset' }, { match: '14155550152', timeoutAfterPlace: 'hang' }], faults: { hangMs: 100 } });
    expect((await h.create(callBody('14155550150', receiver.base))).status).toBe(503);
    await expect(h.create(callBody('14155550151', receiver.base))).rejects.toThrow();
    await expect(h.create(callBody('14155550152', receiver.base))).rejects.toThrow();
    const calls = await settled(h, 2);
    expect(calls.map((c) => c.to)).toEqual(['14155550151', '14155550152']);
    expect(statuses(calls[0]!)).toEqual(['started', 'ringing', 'answered', 'input', 'completed']);
    expect(await h.stats()).toMatchObject({ create_5xx: 1, timeouts_after_place: 2, calls_placed: 2 });
  });

  it('duplicates, reorders and delays events when told to', async () => {
    const { receiver, h } = await setup({ cps: 0, faults: { duplicateEventRate: 1, reorderRate: 1 } });
    await h.create(callBody('14155550106', receiver.base));
    const [call] = await settled(h, 1);
    expect(receiver.events(call!.uuid).map((e) => e.json!.status)).toEqual(['ringing', 'ringing', 'started', 'started', 'completed', 'completed', 'busy', 'busy']);
    await fetch(`${h.base}/_sim/reset`, { method: 'POST' });
    const config = { faults: { duplicateEventRate: 0, reorderRate: 0, delayEventRate: 1, delayEventMs: 50 } };
    await fetch(`${h.base}/_sim/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
    receiver.received.length = 0;
    // Every event is delayed: each is delivered on its own timer, late, but none is lost.
    await h.create(callBody('14155550106', receiver.base));
    const [again] = await settled(h, 1);
    expect(again!.events.every((e) => e.delivered)).toBe(true);
    expect(receiver.events(again!.uuid).map((e) => e.json!.status).sort()).toEqual(['busy', 'completed', 'ringing', 'started']);
  });

  it('retries a failing event receiver once and records what happened', async () => {
    let failures = 0;
    const { receiver, h } = await setup({}, {}, (r, res) => {
      if (r.json?.status === 'started' && failures++ === 0) res.statusCode = 500;
      else if (r.json?.status === 'ringing') res.statusCode = 500;
      else res.statusCode = 204;
      res.end();
    });
    await h.create(callBody('14155550106', receiver.base));
    const [call] = await settled(h, 1);
    const byStatus = Object.fromEntries(call!.events.map((e) => [e.status, e]));
    expect(byStatus.started).toMatchObject({ delivered: true, attempts: 2, http_status: 204 });
    expect(byStatus.ringing).toMatchObject({ delivered: false, attempts: 2, http_status: 500 });
    expect(receiver.events(call!.uuid).map((e) => e.json!.status)).toEqual(['started', 'started', 'ringing', 'ringing', 'busy', 'completed']);
  });
});

describe('ground truth and determinism', () => {
  it('logs every placed call as JSONL and filters ground truth by number', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'voice-sim-'));
    const file = join(dir, 'calls.jsonl');
    const { receiver, h } = await setup({}, { logFile: file });
    await h.create(callBody('14155550101', receiver.base));
    await h.create(callBody('14155550106', receiver.base));
    // Logged before the create answered (a SIGKILL right after must not lose it), not when the call ends.
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
    await settled(h, 2);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { to: string });
    expect(lines.map((l) => l.to)).toEqual(['14155550101', '14155550106']);
    const res = (await (await fetch(`${h.base}/_sim/calls?to=%2B14155550106`)).json()) as { calls: GroundTruthCall[] };
    expect(res.calls).toHaveLength(1);
    expect((await h.stats()).calls_per_number).toEqual({ '14155550101': 1, '14155550106': 1 });
  });

  it('gives the same calls, outcomes and event order for the same seed and inputs', async () => {
    const run = async () => {
      const { receiver, h } = await setup({ cps: 0, seed: 'fixed', deterministicIds: true, outcomeMode: 'probability', faults: { duplicateEventRate: 0.3, reorderRate: 0.3 } });
      for (let i = 0; i < 20; i += 1) await h.create(callBody(`141555501${String(i).padStart(2, '0')}`, receiver.base));
      const calls = await settled(h, 20);
      return calls.map((c) => ({ uuid: c.uuid, to: c.to, outcome: c.outcome, events: c.events.map((e) => e.status), received: receiver.events(c.uuid).map((e) => e.json!.status) }));
    };
    const a = await run();
    const b = await run();
    expect(a).toEqual(b);
    expect(new Set(a.map((c) => c.outcome)).size).toBeGreaterThan(2);
  });

  it('serves and validates runtime config', async () => {
    const { h } = await setup();
    const bad = await fetch(`${h.base}/_sim/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cps: -1 }) });
    expect(bad.status).toBe(400);
    const ok = await fetch(`${h.base}/_sim/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cps: 7 }) });
    expect(((await ok.json()) as { cps: number }).cps).toBe(7);
    expect((await (await fetch(`${h.base}/healthz`)).json())).toEqual({ status: 'ok' });
    expect((await fetch(`${h.base}/readyz`)).status).toBe(200);
  });
});
