import {
  BROADCAST_CONTROL,
  BROADCAST_REQUEST,
  BROADCAST_SUBMIT,
  BroadcastControlState,
  BroadcastSpec,
  DialJob,
  keypressSubject,
} from '@clarion/contracts';
import { encodeJson } from '@clarion/nats';
import { waitFor } from '@clarion/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotencyKvKey, stableId } from '../src/ids.js';
import { listWithCsv, readSubject, startHarness, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const message = { text: 'Hello {{name}}, the site is closed today.' };

async function kvKeys(bucket: 'broadcasts' | 'idempotency' | 'control'): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of await h.kv[bucket].keys()) keys.push(key);
  return keys;
}
const streamMessages = async (stream: string) => (await h.jsm.streams.info(stream)).state.messages;

describe('broadcast.request', () => {
  it('creates the broadcast: spec and control state in KV, one dial job per contact, lifecycle events', async () => {
    const { listId } = await listWithCsv(h, 'staff', 'name,phone,site\nAnn,+1 212 555 0160,Leeds\nBob,+1 212 555 0161,York\nCat,+44 20 7946 0160,Hull\n');
    const reply = await h.request(BROADCAST_REQUEST, { name: 'Site closed', message, audience: { listIds: [listId] } });
    expect(reply).toMatchObject({ ok: true, created: true, counts: { accepted: 3, invalid: 0, duplicate: 0, suppressed: 0 }, invalid: [] });
    const bid: string = reply.broadcastId;
    expect(bid).toMatch(/^b-[0-9a-f]{16}$/);

    const spec = BroadcastSpec.parse((await h.kv.broadcasts.get(bid))?.json());
    expect(spec.counts).toEqual({ accepted: 3, invalid: 0, duplicate: 0, suppressed: 0 });
    expect(spec.request.name).toBe('Site closed');
    const control = BroadcastControlState.parse((await h.kv.control.get(bid))?.json());
    expect(control.status).toBe('running');

    const jobs = await readSubject(h, 'DIAL', `dial.job.${bid}`);
    expect(jobs).toHaveLength(3);
    for (const { data, msgId } of jobs) {
      const job = DialJob.parse(data);
      expect(msgId).toBe(`${bid}.${job.contactId}.1`);
      expect(job.attempt).toBe(1);
    }
    const byNumber = Object.fromEntries(jobs.map(({ data }) => [data.number, data]));
    expect(Object.keys(byNumber).sort()).toEqual(['+12125550160', '+12125550161', '+442079460160']);
    expect(byNumber['+12125550160']).toMatchObject({ name: 'Ann', vars: { site: 'Leeds' } });
    expect(new Set(jobs.map(({ data }) => data.contactId)).size).toBe(3);

    const events = await readSubject(h, 'EVENTS', `evt.broadcast.${bid}`);
    expect(events.map((e) => e.data.type)).toEqual(['created', 'enqueued']);
    expect(events[1]?.data.counts).toEqual(reply.counts);
    // The reporter shows no confirmation rate for a broadcast that never asks for one.
    expect(events.map((e) => e.data.acknowledgement)).toEqual([false, false]);
    const withAck = await h.request(BROADCAST_REQUEST, { name: 'Confirm', message, audience: { numbers: ['+12125550162'] }, acknowledgement: {} });
    const ackEvents = await readSubject(h, 'EVENTS', `evt.broadcast.${withAck.broadcastId}`);
    expect(ackEvents.map((e) => e.data.acknowledgement)).toEqual([true, true]);
  });

  it('answers bad requests with a clear error and creates nothing', async () => {
    const before = { specs: (await kvKeys('broadcasts')).length, dial: await streamMessages('DIAL'), events: await streamMessages('EVENTS') };
    const badJson = await h.request(BROADCAST_REQUEST, '{"name": "x",');
    expect(badJson).toEqual({ ok: false, error: { code: 'invalid_request', message: expect.stringContaining('not valid UTF-8 JSON'), details: [{ path: '(root)', message: 'not valid UTF-8 JSON' }] } });

    const noMessage = await h.request(BROADCAST_REQUEST, { name: 'x', audience: { numbers: ['+12125550170'] } });
    expect(noMessage.ok).toBe(false);
    expect(noMessage.error.details.map((d: { path: string }) => d.path)).toContain('message');

    const unknownList = await h.request(BROADCAST_REQUEST, { name: 'x', message, audience: { listIds: ['no-such-list', 'also-missing'] }, idempotencyKey: 'bad-1' });
    expect(unknownList.error.code).toBe('unknown_list');
    expect(unknownList.error.message).toBe('unknown list ids: no-such-list, also-missing');
    expect(unknownList.error.details).toEqual([
      { path: 'audience.listIds.0', message: 'no list with id "no-such-list"' },
      { path: 'audience.listIds.1', message: 'no list with id "also-missing"' },
    ]);

    const badTemplate = await h.request(BROADCAST_REQUEST, { name: 'x', message: { text: 'Hello {{name' }, audience: { numbers: ['+12125550170'] } });
    expect(badTemplate.error.details).toEqual([{ path: 'message.text', message: 'has "{{" without a matching "}}"' }]);

    const badSsml = await h.request(BROADCAST_REQUEST, { name: 'x', message: { text: '<speak>Fish & chips <break time="1s"/></speak>' }, audience: { numbers: ['+12125550170'] } });
    expect(badSsml.error.details[0].message).toContain('"&" at character');

    const unbalanced = await h.request(BROADCAST_REQUEST, { name: 'x', message: { text: '<speak><p>Leave now</speak>' }, audience: { numbers: ['+12125550170'] } });
    expect(unbalanced.error.details[0].message).toContain('does not match');

    // Fresh-user findings: each of these used to create a broadcast.
    const unknownCountry = await h.request(BROADCAST_REQUEST, { name: 'x', message, audience: { numbers: ['212 555 0170'], defaultCountry: 'ZZ' } });
    expect(unknownCountry.error.details).toContainEqual({ path: 'audience.defaultCountry', message: '"ZZ" is not a country Clarion knows (ISO 3166 alpha-2, e.g. US or GB)' });
    const sameKeys = await h.request(BROADCAST_REQUEST, { name: 'x', message, audience: { numbers: ['+12125550170'] }, acknowledgement: { key: '1', optOutKey: '1' } });
    expect(sameKeys.error.details).toEqual([{ path: 'acknowledgement.optOutKey', message: '"1" is already acknowledgement.key; each key needs its own digit' }]);
    const past = await h.request(BROADCAST_REQUEST, { name: 'x', message, audience: { numbers: ['+12125550170'] }, expiresAt: '2020-01-01T00:00:00.000Z' });
    expect(past.error.details).toEqual([{ path: 'expiresAt', message: '2020-01-01T00:00:00.000Z is in the past: nobody would be called' }]);
    const nobody = await h.request(BROADCAST_REQUEST, { name: 'x', message, audience: { numbers: ['12345', 'call me'] } });
    expect(nobody.error.code).toBe('invalid_request');
    expect(nobody.error.details.map((d: { path: string }) => d.path)).toEqual(['audience.numbers.0', 'audience.numbers.1']);
    expect(nobody.error.details[0].message).toMatch(/^12345: /);

    expect((await kvKeys('broadcasts')).length).toBe(before.specs);
    expect(await kvKeys('idempotency')).not.toContain(idempotencyKvKey('bad-1'));
    expect(await streamMessages('DIAL')).toBe(before.dial);
    expect(await streamMessages('EVENTS')).toBe(before.events);
  });

  it('returns the same broadcast for a retried request and enqueues nothing twice', async () => {
    const request = { name: 'Retry me', idempotencyKey: 'retry-1', message, audience: { numbers: ['+1 212 555 0171', '+1 212 555 0172'] } };
    const first = await h.request(BROADCAST_REQUEST, request);
    expect(first).toMatchObject({ ok: true, created: true });
    const dialBefore = await streamMessages('DIAL');
    const second = await h.request(BROADCAST_REQUEST, request);
    expect(second).toEqual({ ...first, created: false });
    expect(await streamMessages('DIAL')).toBe(dialBefore);
  });

  it('refuses an idempotency key reused for a different message or audience, and sends nothing', async () => {
    const request = { name: 'Leak', idempotencyKey: 'reuse-1', message, audience: { numbers: ['+1 212 555 0177'] } };
    const first = await h.request(BROADCAST_REQUEST, request);
    expect(first).toMatchObject({ ok: true, created: true });
    const dialBefore = await streamMessages('DIAL');
    const changed = await h.request(BROADCAST_REQUEST, { ...request, message: { text: 'Evacuate now.' }, audience: { numbers: ['+1 212 555 0178'] } });
    expect(changed).toMatchObject({ ok: false, error: { code: 'idempotency_conflict', details: [{ path: 'idempotencyKey' }] } });
    expect(changed.error.message).toContain(first.broadcastId);
    expect(await streamMessages('DIAL')).toBe(dialBefore);
    // The same request again is still a harmless retry.
    expect(await h.request(BROADCAST_REQUEST, request)).toEqual({ ...first, created: false });
  });

  it('answers a retry with its broadcast even after a list of it was deleted', async () => {
    const { listId } = await listWithCsv(h, 'gone', 'phone\n+1 212 555 0176\n');
    const request = { name: 'Gone', idempotencyKey: 'retry-gone', message, audience: { listIds: [listId] } };
    const first = await h.request(BROADCAST_REQUEST, request);
    expect(first).toMatchObject({ ok: true, counts: { accepted: 1 } });
    expect((await h.http('DELETE', `/v1/lists/${listId}`)).status).toBe(204);
    expect(await h.request(BROADCAST_REQUEST, request)).toEqual({ ...first, created: false });
    expect((await h.request(BROADCAST_REQUEST, { ...request, idempotencyKey: 'fresh-gone' })).error.code).toBe('unknown_list');
  });

  it('finishes the enqueue of a broadcast whose first attempt died half-way', async () => {
    const bid = 'b-halfway-000000001';
    await h.kv.idempotency.create(idempotencyKvKey('died-1'), encodeJson({ broadcastId: bid, status: 'enqueuing' }));
    const request = { name: 'Died', idempotencyKey: 'died-1', message, audience: { numbers: ['+12125550173', '+12125550174', '+12125550175'] } };
    // The first attempt got as far as one dial job before it died.
    const cid = stableId('c', bid, '+12125550173');
    await h.js.publish(
      `dial.job.${bid}`,
      encodeJson({ broadcastId: bid, contactId: cid, number: '+12125550173', attempt: 1 }),
      { msgID: `${bid}.${cid}.1` },
    );
    const reply = await h.request(BROADCAST_REQUEST, request);
    expect(reply).toMatchObject({ ok: true, broadcastId: bid, created: false, counts: { accepted: 3 } });
    const again = await h.request(BROADCAST_REQUEST, request);
    expect(again).toEqual(reply);
    const jobs = await readSubject(h, 'DIAL', `dial.job.${bid}`);
    expect(jobs).toHaveLength(3);
    expect(BroadcastSpec.parse((await h.kv.broadcasts.get(bid))?.json()).counts?.accepted).toBe(3);
  });

  it('counts duplicates across lists, suppressed and invalid numbers, with a final per duplicate and suppressed contact', async () => {
    const a = await listWithCsv(h, 'a', 'name,phone\nA1,+1 212 555 0180\nA2,+1 212 555 0181\nA3,+1 212 555 0182\n');
    const b = await listWithCsv(h, 'b', 'name,phone\nB1,+1 212 555 0181\nB2,+1 212 555 0183\nB3,+1 212 555 0184\n');
    const sup = await h.http('POST', '/v1/suppressions', { numbers: ['+1 212 555 0182', '+1 212 555 0184'] });
    expect(sup.body).toEqual({ added: 2, existing: 0, invalid: [] });
    const reply = await h.request(BROADCAST_REQUEST, {
      name: 'Mixed',
      message,
      audience: { listIds: [a.listId, b.listId], numbers: ['(212) 555-0180', 'call me maybe', { number: '020 7946 0180', country: 'UK' }, '1234'] },
    });
    expect(reply).toMatchObject({
      ok: true,
      // 9 entries + 2 invalid: 0180 0181 0182(s) | 0181(d) 0183 0184(s) | 0180(d) junk(i) +44(ok) 12(i)
      counts: { accepted: 4, duplicate: 2, suppressed: 2, invalid: 2 },
      invalid: [
        { input: 'call me maybe', reason: 'phone number contains letters' },
        { input: '1234', reason: 'impossible number for US (no country given; read as US)' },
      ],
    });
    const bid = reply.broadcastId;
    const jobs = await readSubject(h, 'DIAL', `dial.job.${bid}`);
    expect(jobs.map((j) => j.data.number).sort()).toEqual(['+12125550180', '+12125550181', '+12125550183', '+442079460180']);
    const finals = await readSubject(h, 'EVENTS', `evt.contact.${bid}`);
    expect(finals.map((f) => [f.data.state, f.data.number]).sort()).toEqual([
      ['duplicate', '+12125550180'],
      ['duplicate', '+12125550181'],
      ['suppressed', '+12125550182'],
      ['suppressed', '+12125550184'],
    ]);
    for (const f of finals) expect(f.msgId).toBe(`final.${bid}.${f.data.contactId}`);
    const ids = new Set([...jobs, ...finals].map((m) => m.data.contactId));
    expect(ids.size).toBe(8);
  });
});

describe('broadcast.request: inline numbers only', () => {
  it('counts the same number written several ways inline as duplicates, so the counts add up', async () => {
    const reply = await h.request(BROADCAST_REQUEST, {
      name: 'Inline repeats',
      message,
      audience: { numbers: ['+1 415 555 0170', '4155550170', '+1 (415) 555-0170', '+1 415 555 0171'] },
    });
    expect(reply).toMatchObject({ ok: true, counts: { accepted: 2, duplicate: 2, suppressed: 0, invalid: 0 } });
    const bid = reply.broadcastId;
    const jobs = await readSubject(h, 'DIAL', `dial.job.${bid}`);
    expect(jobs.map((j) => j.data.number).sort()).toEqual(['+14155550170', '+14155550171']);
    const finals = await readSubject(h, 'EVENTS', `evt.contact.${bid}`);
    expect(finals.map((f) => f.data.state)).toEqual(['duplicate', 'duplicate']);
    expect(new Set([...jobs, ...finals].map((m) => m.data.contactId)).size).toBe(4);
  });

  it('counts junk inline entries as invalid and calls everyone else', async () => {
    const reply = await h.request(BROADCAST_REQUEST, {
      name: 'Inline junk',
      message,
      audience: { numbers: ['', '0', '+1', null, 14155550172, { number: '' }, '+1 415 555 0173'] },
    });
    expect(reply).toMatchObject({ ok: true, counts: { accepted: 2, invalid: 5, duplicate: 0, suppressed: 0 } });
    const jobs = await readSubject(h, 'DIAL', `dial.job.${reply.broadcastId}`);
    expect(jobs.map((j) => j.data.number).sort()).toEqual(['+14155550172', '+14155550173']);
  });
});

describe('broadcast.control', () => {
  it('pauses, resumes and cancels; refuses unknown broadcasts and resuming a cancelled one', async () => {
    const created = await h.request(BROADCAST_REQUEST, { name: 'Control', message, audience: { numbers: ['+12125550190'] } });
    const bid = created.broadcastId;
    const paused = await h.request(BROADCAST_CONTROL, { broadcastId: bid, action: 'pause', reason: 'checking' });
    expect(paused).toMatchObject({ ok: true, state: { broadcastId: bid, status: 'paused', reason: 'checking' } });
    expect(BroadcastControlState.parse((await h.kv.control.get(bid))?.json()).status).toBe('paused');
    expect((await h.request(BROADCAST_CONTROL, { broadcastId: bid, action: 'resume' })).state.status).toBe('running');
    expect((await h.request(BROADCAST_CONTROL, { broadcastId: bid, action: 'cancel' })).state.status).toBe('cancelled');
    const resume = await h.request(BROADCAST_CONTROL, { broadcastId: bid, action: 'resume' });
    expect(resume).toMatchObject({ ok: false, error: { code: 'conflict' } });
    const events = await readSubject(h, 'EVENTS', `evt.broadcast.${bid}`);
    expect(events.map((e) => e.data.type)).toEqual(['created', 'enqueued', 'paused', 'resumed', 'cancelled']);
    expect(events[2]?.data.reason).toBe('checking');

    const unknown = await h.request(BROADCAST_CONTROL, { broadcastId: 'b-nope', action: 'pause' });
    expect(unknown).toMatchObject({ ok: false, error: { code: 'not_found', message: 'unknown broadcast "b-nope"' } });
    const bad = await h.request(BROADCAST_CONTROL, { broadcastId: bid, action: 'explode' });
    expect(bad.error.details[0].path).toBe('action');
  });
});

describe('broadcast.submit and opt-outs', () => {
  it('creates a broadcast from a submitted request and ignores a bad one', async () => {
    await h.js.publish(BROADCAST_SUBMIT, encodeJson({ name: 'no message', audience: { numbers: ['+12125550191'] } }));
    await h.js.publish(BROADCAST_SUBMIT, encodeJson({ name: 'Submitted', idempotencyKey: 'sub-1', message, audience: { numbers: ['+12125550191'] } }));
    const record = await waitFor(async () => {
      const entry = await h.kv.idempotency.get(idempotencyKvKey('sub-1'));
      const value = entry?.json<{ broadcastId: string; status: string }>();
      return value?.status === 'enqueued' ? value : undefined;
    }, { message: 'submitted broadcast enqueued' });
    const jobs = await readSubject(h, 'DIAL', `dial.job.${record.broadcastId}`);
    expect(jobs.map((j) => j.data.number)).toEqual(['+12125550191']);
    await waitFor(async () => (await h.jsm.consumers.info('BROADCAST_REQUESTS', 'contacts-submit')).num_ack_pending === 0 &&
      (await h.jsm.consumers.info('BROADCAST_REQUESTS', 'contacts-submit')).num_pending === 0, { message: 'submit consumer drained' });
  });

  it('suppresses a number opted out by keypress', async () => {
    await h.js.publish(
      keypressSubject('b-optout'),
      encodeJson({ kind: 'keypress', broadcastId: 'b-optout', contactId: 'c1', attempt: 1, uuid: 'u-1', number: '12125550192', meaning: 'opt_out', digits: '9', at: new Date().toISOString() }),
    );
    await h.js.publish(keypressSubject('b-optout'), encodeJson({ kind: 'keypress', broken: true }));
    const found = await waitFor(async () => {
      const res = await h.http('GET', '/v1/suppressions?limit=1000');
      return res.body.suppressions.find((s: { number: string }) => s.number === '+12125550192');
    }, { message: 'opt-out suppressed' });
    expect(found).toMatchObject({ source: 'keypress', broadcastId: 'b-optout' });
  });
});
