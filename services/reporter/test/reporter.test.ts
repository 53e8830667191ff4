import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROADCAST_CONTROL, broadcastEventSubject, callEventSubject, CONSUMERS, STREAMS } from '@clarion/contracts';
import { ensureStreams, jetstream } from '@clarion/nats';
import { waitFor } from '@clarion/testkit';
import type { BroadcastSummary } from '../src/records.js';
import { recordedBroadcast, shuffle, startHarness, TOKEN, type Harness, STORES } from './helpers.js';

let h: Harness;

const summaryOf = async (bid: string) => (await h.get<BroadcastSummary>(`/v1/broadcasts/${bid}`)).body;
const waitDone = (bid: string) =>
  waitFor(async () => {
    const s = await h.get<BroadcastSummary>(`/v1/broadcasts/${bid}`);
    return s.status === 200 && s.body.done ? s.body : undefined;
  }, { message: `broadcast ${bid} done`, timeoutMs: 15_000 });

const EXPECTED_COUNTS = { acknowledged: 1, answered: 1, no_answer: 1, invalid_number: 1, voicemail: 1, suppressed: 1, duplicate: 1 };

/** Contacts and attempts of a broadcast without the broadcast id, for comparing two broadcasts. */
async function records(bid: string) {
  const contacts = (await h.get<{ items: Record<string, unknown>[] }>(`/v1/broadcasts/${bid}/contacts?limit=100`)).body.items;
  const attempts: unknown[] = [];
  for (const c of contacts) {
    const list = (await h.get<{ items: Record<string, unknown>[] }>(`/v1/broadcasts/${bid}/contacts/${String(c.id)}/attempts`)).body.items;
    attempts.push(...list.map(({ id: _id, broadcastId: _b, uuid: _u, ...rest }) => rest));
  }
  return { contacts: contacts.map(({ broadcastId: _b, ...rest }) => rest), attempts };
}

// The same suite on every store: the embedded one always, MongoDB when MONGO_URL is set.
describe.each(STORES)('on the $name store', (store) => {
  beforeAll(async () => {
    h = await startHarness(store.open);
  });
  afterAll(async () => {
    await h?.close();
  });

  describe('aggregation through real NATS', () => {
    it('applies a shuffled, duplicated recording to exact records and counts', async () => {
      const bid = 'rec-shuffled';
      const events = recordedBroadcast(bid);
      const messy = shuffle([...events, ...shuffle(events, 7).slice(0, 25)], 42);
      for (const e of messy) await h.publish(e);
      const s = await waitDone(bid);
      expect(s).toMatchObject({
        id: bid,
        name: `Flood warning ${bid}`,
        priority: 'critical',
        status: 'completed',
        audience: 7,
        final: 7,
        pending: 0,
        counts: EXPECTED_COUNTS,
        attempts: 6,
        timings: {
          createdAt: '2026-03-02T10:00:00.000Z',
          firstCallAt: '2026-03-02T10:00:02.000Z',
          lastCallAt: '2026-03-02T10:05:00.000Z',
          completedAt: '2026-03-02T10:05:30.000Z',
        },
        rates: { answerRate: 0.6, confirmationRate: 0.3333 },
        etaSeconds: 0,
      });
      expect(Object.values(s.counts).reduce((a, b) => a + b, 0)).toBe(7);

      const c2 = (await h.get<{ items: Record<string, unknown>[] }>(`/v1/broadcasts/${bid}/contacts/c2/attempts`)).body.items;
      expect(c2.map((a) => [a.attempt, a.outcome, a.final])).toEqual([
        [1, 'busy', true],
        [2, 'answered', true],
      ]);
      const c5 = (await h.get<{ items: Record<string, unknown>[] }>(`/v1/broadcasts/${bid}/contacts/c5/attempts`)).body.items;
      expect(c5[0]).toMatchObject({ outcome: 'voicemail', unclassified: ['weird_new_status'], statuses: ['answered', 'completed', 'machine', 'started', 'weird_new_status'] });
      const c1 = (await h.get<{ items: Record<string, unknown>[] }>(`/v1/broadcasts/${bid}/contacts/c1/attempts`)).body.items;
      expect(c1[0]).toMatchObject({
        outcome: 'acknowledged',
        digits: ['1'],
        number: '+12025550101',
        placedAt: '2026-03-02T10:00:02.000Z',
        answeredAt: '2026-03-02T10:00:03.000Z',
        endedAt: '2026-03-02T10:00:03.000Z',
        duration: 12,
        price: 0.01,
      });

      const contacts = (await h.get<{ items: Record<string, unknown>[] }>(`/v1/broadcasts/${bid}/contacts?limit=100`)).body.items;
      expect(contacts.map((c) => [c.id, c.state, c.final, c.attempts])).toEqual([
        ['c1', 'acknowledged', true, 1],
        ['c2', 'answered', true, 2],
        ['c3', 'no_answer', true, 1],
        ['c4', 'invalid_number', true, 1],
        ['c5', 'voicemail', true, 1],
        ['c6', 'suppressed', true, 0],
        ['c7', 'duplicate', true, 0],
      ]);
      expect(contacts[1]).toMatchObject({ lastOutcome: 'answered', name: 'Person 2', number: '+12025550102' });
    });

    it('reaches the same records whatever the order and repetition', async () => {
      const forward = recordedBroadcast('rec-forward');
      for (const e of forward) await h.publish(e);
      const backward = recordedBroadcast('rec-backward').reverse();
      for (const e of [...backward, ...backward.slice(0, 20)]) await h.publish(e);
      await waitDone('rec-forward');
      await waitDone('rec-backward');
      const a = await records('rec-forward');
      const b = await records('rec-backward');
      expect(b).toEqual(a);
      const sa = await summaryOf('rec-forward');
      const sb = await summaryOf('rec-backward');
      expect(sb.counts).toEqual(sa.counts);
      expect(sb.timings).toEqual(sa.timings);
    });

    it('counts pending contacts by state, adding up to the audience, and never moves backwards', async () => {
      const bid = 'rec-pending';
      const t = (s: number) => new Date(Date.parse('2026-03-02T11:00:00.000Z') + s * 1000).toISOString();
      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'created', at: t(0), name: 'Pending' });
      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'enqueued', at: t(1), counts: { accepted: 4, invalid: 0, duplicate: 0, suppressed: 0 } });
      await h.publish({ broadcastId: bid, contactId: 'p1', number: '+12025550111', attempt: 1 });
      await h.publish({ kind: 'attempt', broadcastId: bid, contactId: 'p2', attempt: 1, number: '+12025550112', phase: 'placed', at: t(2) });
      await h.publish({ kind: 'attempt', broadcastId: bid, contactId: 'p3', attempt: 1, number: '+12025550113', phase: 'outcome', outcome: 'busy', retryAt: 1, at: t(3) });
      // Late and repeated: attempt 1 "placed" after its outcome must not undo waiting_retry.
      await h.publish({ kind: 'attempt', broadcastId: bid, contactId: 'p3', attempt: 1, number: '+12025550113', phase: 'placed', at: t(3) });
      await h.publish({ broadcastId: bid, contactId: 'p3', number: '+12025550113', attempt: 1 });
      const s = await waitFor(async () => {
        const x = await summaryOf(bid);
        return x.counts?.waiting_retry === 1 && x.counts.calling === 1 ? x : undefined;
      });
      expect(s).toMatchObject({ status: 'running', audience: 4, pending: 4, final: 0, done: false, counts: { queued: 2, calling: 1, waiting_retry: 1 } });

      const pending = (await h.get<{ items: { id: string; state: string }[] }>(`/v1/broadcasts/${bid}/contacts?state=pending`)).body.items;
      expect(pending.map((c) => [c.id, c.state])).toEqual([
        ['p1', 'queued'],
        ['p2', 'calling'],
        ['p3', 'waiting_retry'],
      ]);
    });

    it('while retries wait: counts them, gives their due times, and puts the ETA no earlier than the last one', async () => {
      const bid = 'rec-retry-eta';
      const now = Date.now();
      const t = (s: number) => new Date(now + s * 1000).toISOString();
      const next = now + 5 * 60_000;
      const last = now + 10 * 60_000;
      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'created', at: t(-60), name: 'Retry ETA', acknowledgement: false });
      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'enqueued', at: t(-59), counts: { accepted: 3, invalid: 0, duplicate: 0, suppressed: 0 } });
      for (const [cid, outcome, retryAt] of [['r2', 'no_answer', next], ['r3', 'busy', last]] as const) {
        const number = cid === 'r2' ? '+12025550122' : '+12025550123';
        await h.publish({ kind: 'attempt', broadcastId: bid, contactId: cid, attempt: 1, number, phase: 'placed', at: t(-50) });
        await h.publish({ kind: 'attempt', broadcastId: bid, contactId: cid, attempt: 1, number, phase: 'outcome', outcome, retryAt, at: t(-20) });
      }
      await h.publish({ kind: 'attempt', broadcastId: bid, contactId: 'r1', attempt: 1, number: '+12025550121', phase: 'placed', at: t(-50) });
      await h.publish({ kind: 'contact', broadcastId: bid, contactId: 'r1', number: '+12025550121', state: 'answered', attempts: 1, at: t(-30) });
      const s = await waitFor(async () => {
        const x = await summaryOf(bid);
        return x.counts?.waiting_retry === 2 && x.final === 1 ? x : undefined;
      }, { message: 'two contacts waiting for their retry' });
      expect(s).toMatchObject({ status: 'running', pending: 2, retries: { waiting: 2, nextAt: new Date(next).toISOString(), lastAt: new Date(last).toISOString() } });
      // The call rate alone says "a few seconds"; nobody can be final before the last retry is due.
      expect(s.eta).not.toBeNull();
      expect(Date.parse(s.eta!)).toBeGreaterThanOrEqual(last);
      // Nobody was asked to press a key: no confirmation rate, not 0 %.
      expect(s.acknowledgement).toBe(false);
      expect(s.rates).toMatchObject({ answerRate: 1, confirmationRate: null });
      const waiting = (await h.get<{ items: { id: string; retryAt: string | null }[] }>(`/v1/broadcasts/${bid}/contacts?state=waiting_retry`)).body.items;
      expect(waiting.map((c) => [c.id, c.retryAt])).toEqual([
        ['r2', new Date(next).toISOString()],
        ['r3', new Date(last).toISOString()],
      ]);

      // Once the later retry is placed, only the earlier one is still waiting.
      await h.publish({ kind: 'attempt', broadcastId: bid, contactId: 'r3', attempt: 2, number: '+12025550123', phase: 'placed', at: t(0) });
      const after = await waitFor(async () => {
        const x = await summaryOf(bid);
        return x.counts?.waiting_retry === 1 ? x : undefined;
      }, { message: 'one contact still waiting' });
      expect(after.retries).toEqual({ waiting: 1, nextAt: new Date(next).toISOString(), lastAt: new Date(next).toISOString() });
    });

    it('keeps the reason of each pause, shows it while paused, and lists every lifecycle event with its reason', async () => {
      const bid = 'rec-pause-reason';
      const t = (s: number) => new Date(Date.parse('2026-03-02T15:00:00.000Z') + s * 1000).toISOString();
      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'enqueued', at: t(0), name: 'Pause reason', acknowledgement: true, counts: { accepted: 2, invalid: 0, duplicate: 0, suppressed: 0 } });
      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'paused', at: t(10), reason: 'road | closed, checking the list' });
      const paused = await waitFor(async () => {
        const x = await summaryOf(bid);
        return x.status === 'paused' ? x : undefined;
      }, { message: 'paused' });
      expect(paused.reason).toBe('road | closed, checking the list');
      expect(paused.lifecycle).toEqual([{ at: t(10), type: 'paused', reason: 'road | closed, checking the list' }]);
      expect(paused.acknowledgement).toBe(true);

      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'resumed', at: t(20) });
      const resumed = await waitFor(async () => {
        const x = await summaryOf(bid);
        return x.status === 'running' ? x : undefined;
      }, { message: 'resumed' });
      expect(resumed.reason).toBeNull();

      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'paused', at: t(30), reason: 'second look' });
      const again = await waitFor(async () => {
        const x = await summaryOf(bid);
        return x.status === 'paused' ? x : undefined;
      }, { message: 'paused again' });
      expect(again.reason).toBe('second look');
      expect(again.lifecycle).toEqual([
        { at: t(10), type: 'paused', reason: 'road | closed, checking the list' },
        { at: t(20), type: 'resumed', reason: null },
        { at: t(30), type: 'paused', reason: 'second look' },
      ]);
    });

    it('keeps the first final state and logs a later different one', async () => {
      const bid = 'rec-conflict';
      const at = '2026-03-02T12:00:00.000Z';
      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'enqueued', at, counts: { accepted: 1, invalid: 0, duplicate: 0, suppressed: 0 } });
      await h.publish({ kind: 'contact', broadcastId: bid, contactId: 'x1', state: 'answered', attempts: 1, at });
      await waitDone(bid);
      await h.publish({ kind: 'contact', broadcastId: bid, contactId: 'x1', state: 'cancelled', attempts: 1, at });
      await waitFor(() => h.logs.find((l) => l.broadcastId === bid && l.ignored === 'cancelled'), { message: 'conflict logged' });
      const s = await summaryOf(bid);
      expect(s.counts).toEqual({ answered: 1 });
      expect(s.status).toBe('completed');
    });

    it('terminates bad messages with a logged reason and keeps working', async () => {
      const js = jetstream(h.nc);
      await js.publish(callEventSubject('bad'), new TextEncoder().encode('{not json'));
      await js.publish(broadcastEventSubject('bad'), new TextEncoder().encode(JSON.stringify({ kind: 'broadcast', broadcastId: 'bad', type: 'exploded', at: 'yesterday' })));
      await js.publish('dial.job.bad', new TextEncoder().encode(JSON.stringify({ broadcastId: 'bad', contactId: 'z', number: '12345', attempt: 1 })));
      await waitFor(() => h.logs.filter((l) => l.msg === 'invalid message terminated').length >= 3, { message: 'three invalid messages logged' });
      const reasons = h.logs.filter((l) => l.msg === 'invalid message terminated').map((l) => String(l.reason));
      expect(reasons.some((r) => r.includes('not valid UTF-8 JSON'))).toBe(true);
      expect(reasons.some((r) => r.includes('number'))).toBe(true);

      const bid = 'after-bad';
      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'created', at: '2026-03-02T13:00:00.000Z', name: 'Still working' });
      await waitFor(async () => (await h.get(`/v1/broadcasts/${bid}`)).status === 200);
      const jsm = await ensureStreams(h.nc);
      await waitFor(async () => (await jsm.consumers.info(STREAMS.events.name, CONSUMERS.reporterEvents)).num_ack_pending === 0, { message: 'nothing left unacked' });
    });
  });

  describe('REST API', () => {
    it('requires the token except on public paths', async () => {
      const none = await fetch(`${h.base}/v1/broadcasts`);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      expect((await fetch(`${h.base}/v1/broadcasts`, { headers: { authorization: 'Bearer wrong-token-000000000' } })).status).toBe(401);
      expect((await fetch(`${h.base}/v1/broadcasts?token=${TOKEN}`)).status).toBe(200);
      for (const path of ['/healthz', '/readyz', '/openapi.json', '/']) expect((await fetch(h.base + path)).status, path).toBe(200);
      const doc = (await (await fetch(`${h.base}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths)).toContain('/v1/broadcasts/{id}/export.csv');
      expect(await (await fetch(`${h.base}/metrics`)).text()).toContain('reporter_events_applied_total');
    });

    it('answers bad queries and unknown broadcasts with clear errors', async () => {
      expect((await h.get('/v1/broadcasts/no-such-thing')).status).toBe(404);
      const bad = await h.get<{ error: { code: string; message: string } }>('/v1/broadcasts/bad$id');
      expect(bad.status).toBe(400);
      expect((await h.get('/v1/attempts?number=12')).status).toBe(400);
      const cursor = await h.get<{ error: { code: string } }>('/v1/broadcasts?cursor=garbage');
      expect(cursor.status).toBe(400);
      expect(cursor.body.error.code).toBe('invalid_cursor');
    });

    it('lists broadcasts with status filter and cursor paging', async () => {
      await waitDone('rec-shuffled');
      const all: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; body: { items: BroadcastSummary[]; nextCursor: string | null } } = await h.get(`/v1/broadcasts?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.status).toBe(200);
        all.push(...page.body.items.map((b) => b.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(new Set(all).size).toBe(all.length);
      expect(all).toEqual(expect.arrayContaining(['rec-shuffled', 'rec-forward', 'rec-backward', 'rec-pending']));
      const completed = await waitFor(async () => {
        const r = await h.get<{ items: BroadcastSummary[] }>('/v1/broadcasts?status=completed&limit=200');
        const ids = r.body.items.map((b) => b.id);
        return ids.includes('rec-shuffled') ? ids : undefined;
      });
      expect(completed).not.toContain('rec-pending');
      const since = await h.get<{ items: BroadcastSummary[] }>(`/v1/broadcasts?since=${encodeURIComponent('2026-03-02T11:00:00Z')}&limit=200`);
      expect(since.body.items.map((b) => b.id)).toContain('rec-pending');
      expect(since.body.items.map((b) => b.id)).not.toContain('rec-shuffled');
      expect((await h.get('/v1/broadcasts?since=yesterday')).status).toBe(400);
    });

    it('filters contacts (everyone not acknowledged) and finds attempts by number', async () => {
      const r = await h.get<{ items: { id: string }[] }>('/v1/broadcasts/rec-shuffled/contacts?notState=acknowledged');
      expect(r.body.items.map((c) => c.id)).toEqual(['c2', 'c3', 'c4', 'c5', 'c6', 'c7']);
      // A misspelt state is a 400 naming the known ones, not an empty page (fresh-user finding).
      const typo = await h.get<{ error: { message: string } }>('/v1/broadcasts/rec-shuffled/contacts?state=acknowleged');
      expect(typo.status).toBe(400);
      expect(typo.body.error.message).toContain('must name known states');
      const paged = await h.get<{ items: { id: string }[]; nextCursor: string }>('/v1/broadcasts/rec-shuffled/contacts?limit=3');
      expect(paged.body.items.map((c) => c.id)).toEqual(['c1', 'c2', 'c3']);
      const next = await h.get<{ items: { id: string }[] }>(`/v1/broadcasts/rec-shuffled/contacts?limit=3&cursor=${paged.body.nextCursor}`);
      expect(next.body.items.map((c) => c.id)).toEqual(['c4', 'c5', 'c6']);
      const byNumber = await h.get<{ items: { broadcastId: string; attempt: number; outcome: string }[] }>(`/v1/attempts?number=${encodeURIComponent('+12025550102')}`);
      const mine = byNumber.body.items.filter((a) => a.broadcastId === 'rec-shuffled');
      expect(mine.map((a) => [a.attempt, a.outcome])).toEqual([
        [2, 'answered'],
        [1, 'busy'],
      ]);
    });

    it('gives calls and outcomes over time', async () => {
      const r = await h.get<unknown>('/v1/broadcasts/rec-shuffled/timeline');
      expect(r.status).toBe(200);
      expect(r.body).toEqual({
        bucket: 'second',
        calls: [
          { t: '2026-03-02T10:00:02', n: 5 },
          { t: '2026-03-02T10:05:00', n: 1 },
        ],
        outcomes: [
          { t: '2026-03-02T10:00:01', state: 'duplicate', n: 1 },
          { t: '2026-03-02T10:00:01', state: 'suppressed', n: 1 },
          { t: '2026-03-02T10:00:30', state: 'acknowledged', n: 1 },
          { t: '2026-03-02T10:00:40', state: 'no_answer', n: 1 },
          { t: '2026-03-02T10:00:41', state: 'invalid_number', n: 1 },
          { t: '2026-03-02T10:00:42', state: 'voicemail', n: 1 },
          { t: '2026-03-02T10:05:30', state: 'answered', n: 1 },
        ],
      });
      expect((await h.get('/v1/broadcasts/nobody/timeline')).status).toBe(404);
    });

    it('exports contacts and attempts as CSV', async () => {
      const res = await fetch(`${h.base}/v1/broadcasts/rec-shuffled/export.csv?type=contacts&token=${TOKEN}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/csv');
      expect(res.headers.get('content-disposition')).toContain('broadcast-rec-shuffled-contacts.csv');
      const lines = (await res.text()).trimEnd().split('\r\n');
      expect(lines[0]).toBe('contactId,number,name,state,final,attempts,lastOutcome,reason,updatedAt');
      expect(lines).toHaveLength(8);
      expect(lines[2]).toBe('c2,+12025550102,Person 2,answered,true,2,answered,,2026-03-02T10:05:30.000Z');
      expect(lines[6]).toBe('c6,+12025550106,,suppressed,true,0,,,2026-03-02T10:00:01.000Z');

      const attempts = await (await fetch(`${h.base}/v1/broadcasts/rec-shuffled/export.csv?type=attempts&token=${TOKEN}`)).text();
      const rows = attempts.trimEnd().split('\r\n');
      expect(rows).toHaveLength(7);
      expect(rows[0]).toBe('contactId,attempt,uuid,number,outcome,statuses,unclassified,details,digits,reason,placedAt,answeredAt,endedAt,duration,price');
      expect(rows.find((r) => r.startsWith('c5,'))).toContain(',voicemail,answered completed machine started weird_new_status,weird_new_status,');
      expect((await h.get('/v1/broadcasts/rec-shuffled/export.csv?type=nope')).status).toBe(400);
    });

    it('forwards pause/resume/cancel to broadcast.control and returns the reply', async () => {
      const none = await fetch(`${h.base}/v1/broadcasts/rec-pending/pause`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(none.status).toBe(503);
      const seen: unknown[] = [];
      const sub = h.nc.subscribe(BROADCAST_CONTROL, {
        callback: (_err, msg) => {
          const request = JSON.parse(new TextDecoder().decode(msg.data)) as { broadcastId: string; action: string };
          seen.push(request);
          const reply =
            request.action === 'cancel'
              ? { ok: false, error: { code: 'conflict', message: 'already cancelled' } }
              : { ok: true, state: { broadcastId: request.broadcastId, status: request.action === 'pause' ? 'paused' : 'running', at: '2026-03-02T11:00:00.000Z' } };
          msg.respond(JSON.stringify(reply));
        },
      });
      await h.nc.flush();
      const post = (action: string, body?: unknown) =>
        fetch(`${h.base}/v1/broadcasts/rec-pending/${action}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      const paused = await post('pause', { reason: 'storm over' });
      expect(paused.status).toBe(200);
      expect(await paused.json()).toMatchObject({ ok: true, state: { status: 'paused' } });
      expect(seen[0]).toEqual({ broadcastId: 'rec-pending', action: 'pause', reason: 'storm over' });
      expect((await post('resume')).status).toBe(200);
      const cancel = await post('cancel', {});
      expect(cancel.status).toBe(409);
      expect(((await cancel.json()) as { error: { message: string } }).error.message).toBe('already cancelled');
      expect((await post('explode')).status).toBe(400);
      expect((await post('pause', { reason: 5 })).status).toBe(400);
      // A completed broadcast: refused here, never forwarded (it would only relabel a finished broadcast).
      expect((await h.get<{ status: string }>('/v1/broadcasts/rec-shuffled')).body.status).toBe('completed');
      const forwarded = seen.length;
      const late = await fetch(`${h.base}/v1/broadcasts/rec-shuffled/cancel`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(late.status).toBe(409);
      expect(await late.json()).toMatchObject({ error: { code: 'already_completed', message: expect.stringContaining('nothing to cancel') } });
      expect(seen).toHaveLength(forwarded);
      sub.unsubscribe();
    });
  });

  describe('live stream (SSE)', () => {
    it('pushes summaries as events arrive and ends with the final state', async () => {
      const bid = 'live-1';
      const at = '2026-03-02T14:00:00.000Z';
      await h.publish({ kind: 'broadcast', broadcastId: bid, type: 'enqueued', at, name: 'Live', counts: { accepted: 3, invalid: 0, duplicate: 0, suppressed: 0 } });
      await waitFor(async () => (await h.get(`/v1/broadcasts/${bid}`)).status === 200);
      const res = await fetch(`${h.base}/v1/broadcasts/${bid}/stream?token=${TOKEN}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const events: { event: string; data: BroadcastSummary }[] = [];
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      const nextEvent = async (): Promise<{ event: string; data: BroadcastSummary } | undefined> => {
        for (;;) {
          const cut = buffer.indexOf('\n\n');
          if (cut >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) return { event, data: JSON.parse(data) as BroadcastSummary };
            continue;
          }
          const chunk = await reader.read();
          if (chunk.done) return undefined;
          buffer += decoder.decode(chunk.value, { stream: true });
        }
      };
      const first = await nextEvent();
      expect(first).toMatchObject({ event: 'summary', data: { final: 0, pending: 3 } });
      for (const [i, cid] of ['l1', 'l2', 'l3'].entries()) {
        await h.publish({ kind: 'contact', broadcastId: bid, contactId: cid, state: 'acknowledged', attempts: 1, at });
        // Wait for this final to show before sending the next, so intermediate summaries are observable.
        if (i < 2) {
          for (;;) {
            const e = await nextEvent();
            if (!e) throw new Error('stream ended early');
            events.push(e);
            if (e.data.final === i + 1) break;
          }
        }
      }
      for (;;) {
        const e = await nextEvent();
        if (!e) break;
        events.push(e);
      }
      expect(events.filter((e) => e.event === 'summary').map((e) => e.data.final)).toEqual(expect.arrayContaining([1, 2]));
      const last = events[events.length - 1];
      expect(last?.event).toBe('final');
      expect(last?.data).toMatchObject({ status: 'completed', final: 3, pending: 0, counts: { acknowledged: 3 } });
    });
  });
});
