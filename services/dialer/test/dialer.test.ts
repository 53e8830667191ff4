import { publishJson } from '@clarion/nats';
import { dialJobSubject } from '@clarion/contracts';
import { waitFor } from '@clarion/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { World } from './harness.js';

const world = new World();
let seq = 0;
const newId = (label: string) => `${label}-${++seq}-${Date.now().toString(36)}`;

beforeAll(() => world.start());
afterEach(async () => {
  await world.stopDialers();
  world.api.reply = () => ({ status: 201 });
});
afterAll(() => world.stop());

const finalOf = (bid: string, cid: string) => world.of('contact', bid).find((e) => e.contactId === cid);

describe('dialer', () => {
  it('places a call with the documented body, then reports the outcome and the final state', async () => {
    await world.dialer();
    const bid = newId('basic');
    await world.broadcast(bid, { machine: { action: 'hangup' } });
    await world.jobs(bid, 1, { vars: { street: 'Elm' } });
    const call = await waitFor(() => world.api.callsFor(bid)[0], { message: 'call placed' });
    expect(call.body.to).toEqual([{ type: 'phone', number: '14155550100' }]);
    expect(call.body.random_from_number).toBe(true);
    expect(call.body.ringing_timer).toBe(45);
    expect(call.body.machine_detection).toBe('hangup');
    const answer = new URL(call.body.answer_url[0]!);
    expect(answer.pathname).toBe('/hooks/webhooks/answer');
    expect(Object.fromEntries(answer.searchParams)).toMatchObject({ b: bid, c: 'c0', a: '1' });
    const vars = JSON.parse(Buffer.from(answer.searchParams.get('v')!, 'base64url').toString('utf8'));
    expect(vars).toEqual({ name: 'Person 0', language: 'en-US', vars: { street: 'Elm' } });
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'placed' && e.uuid === call.uuid), { message: 'placed event' });

    await world.callEvents(call, ['started', 'ringing', 'answered', 'human', 'completed']);
    const final = await waitFor(() => finalOf(bid, 'c0'), { message: 'contact final' });
    expect(final).toMatchObject({ state: 'answered', attempts: 1 });
    expect(world.of('attempt', bid).find((e) => e.phase === 'outcome')).toMatchObject({ outcome: 'answered' });
  });

  it('never calls twice when a job is delivered twice, across two replicas', async () => {
    await Promise.all([world.dialer(), world.dialer()]);
    const bid = newId('dup');
    await world.broadcast(bid);
    const [job] = await world.jobs(bid, 1);
    // The same job again under another message id, as a republish after the duplicate window would.
    await publishJson(world.js, dialJobSubject(bid), job, `${bid}.c0.1.again`);
    await world.jobs(bid, 3, {}, 1);
    await waitFor(() => world.api.callsFor(bid).length >= 4, { message: '4 calls' });
    await waitFor(async () => (await world.jsm.consumers.info('DIAL', `dialer-jobs-${bid}`)).num_ack_pending === 0, {
      message: 'jobs settled',
    });
    expect(world.api.callsFor(bid).filter((c) => c.c === 'c0')).toHaveLength(1);
    expect(world.api.callsFor(bid)).toHaveLength(4);
  });

  it('never retries an ambiguous create blindly; its events resolve it as placed', async () => {
    await world.dialer({ ambiguityTimeoutMs: 60_000 }, 300);
    const bid = newId('ambig');
    await world.broadcast(bid);
    world.api.reply = (call) => (call.b === bid ? 'hang' : { status: 201 });
    await world.jobs(bid, 1);
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'ambiguous'), { message: 'ambiguous event' });
    const call = world.api.callsFor(bid)[0]!;
    await world.callEvents(call, ['started', 'ringing', 'busy', 'completed']);
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'outcome'), { message: 'outcome' });
    expect(world.of('attempt', bid).filter((e) => e.phase === 'placed')).toHaveLength(1);
    expect(world.api.callsFor(bid)).toHaveLength(1);
  });

  it('re-places an ambiguous attempt only after the resolution timeout without events', async () => {
    await world.dialer({ ambiguityTimeoutMs: 1500 }, 300);
    const bid = newId('ambig2');
    await world.broadcast(bid);
    let first = true;
    world.api.reply = () => {
      if (!first) return { status: 201 };
      first = false;
      return { status: 503 };
    };
    await world.jobs(bid, 1);
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'ambiguous'), { message: 'ambiguous' });
    const ambiguousAt = Date.now();
    const second = await waitFor(() => world.api.callsFor(bid)[1], { message: 're-placed' });
    expect(second.at - ambiguousAt).toBeGreaterThanOrEqual(1200);
    expect(second.a).toBe(1);
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'placed'), { message: 'placed' });
    expect(world.api.callsFor(bid)).toHaveLength(2);
  });

  it('a 429 slows the account and the job is placed later, once', async () => {
    await world.dialer();
    const bid = newId('rate');
    await world.broadcast(bid);
    let refused = 0;
    world.api.reply = () => (refused++ < 1 ? { status: 429 } : { status: 201 });
    await world.jobs(bid, 2);
    await waitFor(() => world.of('attempt', bid).filter((e) => e.phase === 'placed').length === 2, { message: 'both placed' });
    const calls = world.api.callsFor(bid);
    expect(calls.filter((c) => c.status === 429)).toHaveLength(1);
    expect(calls.filter((c) => c.status === 201).map((c) => c.c).sort()).toEqual(['c0', 'c1']);
  });

  it('a 401 halts dialling with a clear reason', async () => {
    // 5 calls/s: the 401 is back long before the next paced create, however loaded the machine.
    await world.dialer({ accountCps: 5 });
    const bid = newId('auth');
    await world.broadcast(bid);
    world.api.reply = () => ({ status: 401, body: { title: 'Unauthorized', detail: 'Invalid token' } });
    await world.jobs(bid, 5);
    const state = await waitFor(async () => {
      const s = await world.control(bid);
      return s?.status === 'halted' ? s : undefined;
    }, { message: 'halted' });
    expect(state.reason).toMatch(/unauthorized.*401/);
    const event = await waitFor(() => world.of('broadcast', bid).find((e) => e.type === 'halted'), { message: 'halted event' });
    expect(event.reason).toMatch(/unauthorized/);
    const made = world.api.callsFor(bid).length;
    expect(made).toBeLessThanOrEqual(2);
    expect(world.of('attempt', bid).filter((e) => e.phase === 'placed')).toHaveLength(0);
  });

  it('a broadcast started while the breaker is open is halted at once with its reason, and the breaker shows in stats', async () => {
    const dialer = await world.dialer();
    const first = newId('auth1');
    await world.broadcast(first);
    world.api.reply = () => ({ status: 401, body: { title: 'Unauthorized', detail: 'Invalid token' } });
    await world.jobs(first, 2);
    await waitFor(async () => (await world.control(first))?.status === 'halted', { message: 'first halted' });
    expect(dialer.stats()).toMatchObject({ breakerOpen: 1, breakerOpenings: 1 });
    // The breaker stays open for its cooldown (60 s here): a new broadcast must not sit "running" meanwhile.
    const second = newId('auth2');
    await world.broadcast(second);
    await world.jobs(second, 2);
    const state = await waitFor(async () => {
      const s = await world.control(second);
      return s?.status === 'halted' ? s : undefined;
    }, { message: 'second halted' });
    expect(state.reason).toMatch(/unauthorized.*401/);
    expect(world.api.callsFor(second)).toHaveLength(0);
  });

  it('pause stops dialling, resume continues, cancel finalises the rest as cancelled', async () => {
    await world.dialer({ accountCps: 20 });
    const bid = newId('ctl');
    await world.broadcast(bid, {}, 'paused');
    await world.jobs(bid, 4);
    // Paused from the start: another broadcast proves the dialer is working meanwhile.
    const other = newId('other');
    await world.broadcast(other);
    await world.jobs(other, 1);
    await waitFor(() => world.api.callsFor(other).length === 1, { message: 'other broadcast dialled' });
    expect(world.api.callsFor(bid)).toHaveLength(0);

    await world.setControl(bid, 'running');
    await waitFor(() => world.api.callsFor(bid).length === 4, { timeoutMs: 3000, message: 'resumed within a second or so' });

    const cancelled = newId('cancel');
    await world.broadcast(cancelled, {}, 'paused');
    await world.jobs(cancelled, 3);
    await world.setControl(cancelled, 'cancelled', 'operator cancelled');
    await waitFor(() => world.of('contact', cancelled).length === 3, { message: 'all cancelled' });
    expect(world.of('contact', cancelled).every((e) => e.state === 'cancelled' && e.attempts === 0)).toBe(true);
    expect(world.api.callsFor(cancelled)).toHaveLength(0);
  });

  it('retries after the delay and stops once acknowledged', async () => {
    await world.dialer();
    const bid = newId('retry');
    await world.broadcast(bid, {
      acknowledgement: {},
      retry: { maxAttempts: 3, delaySeconds: 1, on: ['busy', 'no_answer', 'answered'] },
    });
    await world.jobs(bid, 1);
    const first = await waitFor(() => world.api.callsFor(bid)[0], { message: 'attempt 1' });
    await world.callEvents(first, ['started', 'ringing', 'busy', 'completed']);
    const outcome = await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'outcome'), { message: 'outcome 1' });
    expect(outcome).toMatchObject({ outcome: 'busy' });
    const second = await waitFor(() => world.api.callsFor(bid)[1], { message: 'attempt 2' });
    expect(second.a).toBe(2);
    expect(second.at).toBeGreaterThanOrEqual(outcome.retryAt as number);
    await world.callEvents(second, ['started', 'answered', { status: 'input', digits: '1' }, 'completed']);
    const final = await waitFor(() => finalOf(bid, 'c0'), { message: 'final' });
    expect(final).toMatchObject({ state: 'acknowledged', attempts: 2 });
    // Duplicated events change nothing and no third attempt follows.
    await world.callEvents(second, ['completed']);
    await new Promise((r) => setTimeout(r, 1500)); // the would-be retry delay: prove absence
    expect(world.api.callsFor(bid)).toHaveLength(2);
    expect(world.of('contact', bid)).toHaveLength(1);
  });

  it('a keypress arriving after the attempt was settled corrects its outcome and the contact final, forwards only', async () => {
    await world.dialer();
    const bid = newId('late');
    await world.broadcast(bid, { acknowledgement: {}, retry: { maxAttempts: 1 } });
    await world.jobs(bid, 1);
    const call = await waitFor(() => world.api.callsFor(bid)[0], { message: 'call' });
    await world.callEvents(call, ['started', 'answered', 'completed']);
    expect(await waitFor(() => finalOf(bid, 'c0'), { message: 'final' })).toMatchObject({ state: 'answered' });
    // The keypress comes late (a webhook retry after an outage), then a weaker straggler.
    await world.callEvents(call, [{ status: 'input', digits: '1' }]);
    const correction = await waitFor(() => world.of('contact', bid).find((e) => e.supersedes !== undefined), { message: 'correction' });
    expect(correction).toMatchObject({ state: 'acknowledged', supersedes: 'answered', attempts: 1 });
    expect(world.of('attempt', bid).filter((e) => e.phase === 'outcome').map((e) => e.outcome)).toEqual(['answered', 'acknowledged']);
    await world.callEvents(call, ['busy']);
    await waitFor(async () => (await world.buckets.ledger.get(`${bid}.c0.1`))?.json<{ signals: { status: string }[] }>().signals.some((x) => x.status === 'busy'), {
      message: 'straggler applied',
    });
    expect(world.of('contact', bid)).toHaveLength(2);
    expect(world.of('attempt', bid).filter((e) => e.phase === 'outcome')).toHaveLength(2);
  });

  it('a bare completed waits longer for the status that says how the call went, so a late busy is still retried', async () => {
    await world.dialer({ outcomeSettleMs: 200 });
    const bid = newId('latebusy');
    await world.broadcast(bid, { retry: { maxAttempts: 2, delaySeconds: 1, on: ['busy'] } });
    await world.jobs(bid, 1);
    const call = await waitFor(() => world.api.callsFor(bid)[0], { message: 'call' });
    await world.callEvents(call, ['started', 'completed']);
    // Past the normal settle window (200 ms), within the longer one for a bare `completed`.
    await new Promise((resolve) => setTimeout(resolve, 600));
    await world.callEvents(call, ['busy']);
    const outcome = await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'outcome'), { message: 'outcome' });
    expect(outcome).toMatchObject({ outcome: 'busy' });
    const retry = await waitFor(() => world.api.callsFor(bid)[1], { message: 'retried' });
    expect(retry.a).toBe(2);
  });

  it('a person who pressed the opt-out key is never called again, even when answered is retried (fresh-user finding)', async () => {
    await world.dialer();
    const bid = newId('optout');
    await world.broadcast(bid, { acknowledgement: { key: '1', optOutKey: '9' }, retry: { maxAttempts: 2, delaySeconds: 0, on: ['answered', 'busy'] } });
    await world.jobs(bid, 2);
    const calls = await waitFor(() => (world.api.callsFor(bid).length === 2 ? world.api.callsFor(bid) : undefined), { message: 'both called' });
    const [out, other] = [calls.find((c) => c.c === 'c0')!, calls.find((c) => c.c === 'c1')!];
    await world.callEvents(out, ['started', 'answered', { status: 'input', digits: '9' }, 'completed']);
    await world.callEvents(other, ['started', 'answered', 'completed']);
    expect(await waitFor(() => finalOf(bid, 'c0'), { message: 'opted-out final' })).toMatchObject({ state: 'answered', attempts: 1, reason: 'opted out by keypress: not called again' });
    // The other contact answered without a key: the policy retries it; the opted-out one gets no second call.
    await waitFor(() => world.api.callsFor(bid).find((c) => c.c === 'c1' && c.a === 2), { message: 'c1 retried' });
    expect(world.api.callsFor(bid).filter((c) => c.c === 'c0')).toHaveLength(1);
  });

  it('a retry scheduled before a late keypress proved the attempt acknowledged is not placed', async () => {
    await world.dialer();
    const bid = newId('lateretry');
    await world.broadcast(bid, { acknowledgement: {}, retry: { maxAttempts: 2, delaySeconds: 2, on: ['answered'] } });
    await world.jobs(bid, 1);
    const call = await waitFor(() => world.api.callsFor(bid)[0], { message: 'call' });
    await world.callEvents(call, ['started', 'answered', 'completed']);
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'outcome' && e.retryAt !== undefined), { message: 'retry scheduled' });
    await world.callEvents(call, [{ status: 'input', digits: '1' }]);
    const final = await waitFor(() => finalOf(bid, 'c0'), { timeoutMs: 15_000, message: 'final without a second call' });
    expect(final).toMatchObject({ state: 'acknowledged', attempts: 1 });
    expect(world.api.callsFor(bid)).toHaveLength(1);
  });

  it('dials critical broadcasts ahead of normal ones', async () => {
    const normal = newId('normal');
    const critical = newId('critical');
    await world.broadcast(normal);
    await world.jobs(normal, 12);
    await world.dialer({ accountCps: 4 });
    await waitFor(() => world.api.callsFor(normal).length >= 1, { message: 'normal started' });
    await world.broadcast(critical, { priority: 'critical' });
    await world.jobs(critical, 3);
    await waitFor(() => world.api.callsFor(critical).length === 3, { message: 'critical dialled' });
    const order = world.api.calls.filter((c) => c.b === normal || c.b === critical).map((c) => c.b);
    const lastCritical = order.lastIndexOf(critical);
    // At most the lookahead (4) plus the first normal call go before the critical ones.
    expect(lastCritical).toBeLessThanOrEqual(1 + 4 + 3);
    expect(order.length).toBeLessThan(15);
    // Leave nothing dialling into the next test's account rate.
    await world.setControl(normal, 'cancelled');
    await waitFor(() => world.api.callsFor(normal).length + world.of('contact', normal).length === 12, { message: 'normal drained' });
  });

  it('a broadcast never exceeds its own calls per second, even after waiting behind a critical one (fresh-user finding)', async () => {
    const slow = newId('slow');
    const critical = newId('urgent');
    await world.broadcast(critical, { priority: 'critical' });
    await world.broadcast(slow, { pacing: { callsPerSecond: 2 } });
    await world.jobs(critical, 6);
    await world.jobs(slow, 8);
    await world.dialer({ accountCps: 3 });
    await waitFor(() => world.api.callsFor(slow).length === 8, { timeoutMs: 30_000, message: 'slow broadcast dialled' });
    // No three of its calls within one second, whatever the account pacer did meanwhile.
    const at = world.api.callsFor(slow).map((c) => c.at).sort((a, b) => a - b);
    const crowded = at.slice(2).map((t, i) => t - at[i]!).filter((gap) => gap < 1000);
    expect(crowded).toEqual([]);
    expect(world.api.callsFor(critical)).toHaveLength(6);
  });

  it('terminates a poison job and keeps going', async () => {
    await world.dialer();
    const bid = newId('poison');
    await world.broadcast(bid);
    await publishJson(world.js, dialJobSubject(bid), { broadcastId: bid, contactId: 'bad', number: 'not-a-number', attempt: 1 });
    await world.jobs(bid, 1);
    await waitFor(() => world.api.callsFor(bid).length === 1, { message: 'good job dialled' });
    expect(world.api.callsFor(bid)[0]!.c).toBe('c0');
  });

  it('finalises expired and outside-window contacts without calling', async () => {
    await world.dialer();
    const expired = newId('expired');
    await world.broadcast(expired, { expiresAt: new Date(Date.now() - 1000).toISOString() });
    await world.jobs(expired, 1);
    await waitFor(() => finalOf(expired, 'c0')?.state === 'expired', { message: 'expired final' });
    const closed = newId('window');
    const hour = new Date().getUTCHours();
    await world.broadcast(closed, {
      window: { start: `${String((hour + 2) % 24).padStart(2, '0')}:00`, end: `${String((hour + 3) % 24).padStart(2, '0')}:00` },
      expiresAt: new Date(Date.now() + 30 * 60_000).toISOString(),
    });
    await world.jobs(closed, 1);
    await waitFor(() => finalOf(closed, 'c0')?.state === 'outside_window', { message: 'outside_window final' });
    expect(world.api.callsFor(expired).length + world.api.callsFor(closed).length).toBe(0);
  });

  it('caps simultaneous calls per broadcast until outcomes free the slots', async () => {
    await world.dialer();
    const bid = newId('cap');
    await world.broadcast(bid, { pacing: { maxConcurrent: 2 } });
    await world.jobs(bid, 5);
    await waitFor(() => world.api.callsFor(bid).length === 2, { message: 'two calls' });
    await new Promise((r) => setTimeout(r, 300)); // prove no third call while two are live
    expect(world.api.callsFor(bid)).toHaveLength(2);
    await world.callEvents(world.api.callsFor(bid)[0]!, ['started', 'answered', 'completed']);
    await waitFor(() => world.api.callsFor(bid).length === 3, { message: 'third call after a slot freed' });
  });

  // The shared schedule itself is proven on grant times in libs/pacer's tests; how the provider sees
  // the calls (arrival times, 429s) depends on host jitter and is measured by `npm run bench -- pacing`.
  it('three replicas sharing the account pacer place each of 30 calls exactly once', async () => {
    const rate = 10;
    await Promise.all([0, 1, 2].map(() => world.dialer({ accountCps: rate })));
    const bid = newId('rate3');
    await world.broadcast(bid);
    await world.jobs(bid, 30);
    await waitFor(() => world.api.callsFor(bid).length === 30, { timeoutMs: 20_000, message: '30 calls' });
    const contacts = world.api.callsFor(bid).map((c) => c.c);
    expect(new Set(contacts).size).toBe(30);
  });

  it('counts voicemail as retryable when machine.countAs is retry, and a 400 for a number as invalid_number', async () => {
    await world.dialer();
    const bid = newId('vm');
    await world.broadcast(bid, { machine: { action: 'leave_message', countAs: 'retry' }, retry: { maxAttempts: 2, delaySeconds: 0, on: ['busy'] } });
    world.api.reply = (call) =>
      call.c === 'c1' ? { status: 400, body: { title: 'Bad Request', invalid_parameters: [{ name: 'to', reason: 'Invalid number' }] } } : { status: 201 };
    await world.jobs(bid, 2);
    const first = await waitFor(() => world.api.callsFor(bid).find((c) => c.c === 'c0'), { message: 'c0 called' });
    await world.callEvents(first, ['started', 'answered', 'machine', 'completed']);
    const second = await waitFor(() => world.api.callsFor(bid).find((c) => c.c === 'c0' && c.a === 2), { message: 'voicemail retried' });
    await world.callEvents(second, ['started', 'answered', 'machine', 'completed']);
    expect(await waitFor(() => finalOf(bid, 'c0'), { message: 'c0 final' })).toMatchObject({ state: 'voicemail', attempts: 2 });
    expect(await waitFor(() => finalOf(bid, 'c1'), { message: 'c1 final' })).toMatchObject({ state: 'invalid_number', attempts: 1 });
    expect(world.api.callsFor(bid).filter((c) => c.c === 'c1')).toHaveLength(1);
  });

  it('cancel ends at once the contacts parked for a calling window or a retry delay (fresh-user finding)', async () => {
    await world.dialer({ cancelSweepGraceMs: 300 });
    // Parked by the calling window: it opens in two hours, and JetStream holds the jobs until then.
    const closed = newId('cancel-window');
    const hour = new Date().getUTCHours();
    await world.broadcast(closed, { window: { start: `${String((hour + 2) % 24).padStart(2, '0')}:00`, end: `${String((hour + 3) % 24).padStart(2, '0')}:00` } });
    await world.jobs(closed, 3);
    // Parked by a retry an hour away after a busy first attempt.
    const later = newId('cancel-retry');
    await world.broadcast(later, { retry: { maxAttempts: 2, delaySeconds: 3600, on: ['busy'] } });
    await world.jobs(later, 1);
    const call = await waitFor(() => world.api.callsFor(later)[0], { message: 'first attempt' });
    await world.callEvents(call, ['started', 'busy', 'completed']);
    await waitFor(() => world.of('attempt', later).find((e) => e.phase === 'outcome' && e.retryAt !== undefined), { message: 'retry scheduled' });
    await new Promise((resolve) => setTimeout(resolve, 500)); // the window jobs reach the dialer and are parked
    expect(world.of('contact', closed)).toHaveLength(0);

    await world.setControl(closed, 'cancelled', 'storm passed');
    await world.setControl(later, 'cancelled', 'storm passed');
    await waitFor(() => world.of('contact', closed).length === 3 && finalOf(later, 'c0') !== undefined, { timeoutMs: 15_000, message: 'parked contacts cancelled' });
    expect(world.of('contact', closed).map((e) => [e.contactId, e.state, e.attempts, e.reason]).sort()).toEqual([
      ['c0', 'cancelled', 0, 'storm passed'],
      ['c1', 'cancelled', 0, 'storm passed'],
      ['c2', 'cancelled', 0, 'storm passed'],
    ]);
    expect(finalOf(later, 'c0')).toMatchObject({ state: 'cancelled', attempts: 1 });
    expect(world.api.callsFor(closed)).toHaveLength(0);
    expect(world.api.callsFor(later)).toHaveLength(1);
  });

  it('cancel finalises jobs already waiting for a call slot', async () => {
    await world.dialer();
    const bid = newId('cancel-wait');
    await world.broadcast(bid, { pacing: { maxConcurrent: 1 } });
    await world.jobs(bid, 3);
    await waitFor(() => world.api.callsFor(bid).length === 1, { message: 'first call' });
    await world.setControl(bid, 'cancelled', 'all clear');
    await waitFor(() => world.of('contact', bid).length === 2, { timeoutMs: 2000, message: 'waiting jobs cancelled' });
    expect(world.of('contact', bid).every((e) => e.state === 'cancelled' && e.reason === 'all clear')).toBe(true);
    const live = world.api.callsFor(bid)[0]!;
    await world.callEvents(live, ['started', 'answered', 'completed']);
    expect(await waitFor(() => finalOf(bid, live.c), { message: 'live call final' })).toMatchObject({ state: 'answered' });
    expect(world.api.callsFor(bid)).toHaveLength(1);
  });

  const crashedClaim = (bid: string, extra: Record<string, unknown>) =>
    world.buckets.ledger.create(
      `${bid}.c0.1`,
      JSON.stringify({ state: 'claimed', broadcastId: bid, contactId: 'c0', attempt: 1, number: '+14155550100', owner: 'crashed', claimedAt: Date.now() - 60_000, tries: 1, signals: [], ...extra }),
    );

  it('treats a claim sent without a recorded result (crash) as ambiguous, not as a reason to call again', async () => {
    await world.dialer({ ambiguityTimeoutMs: 1200, claimGraceMs: 5000 });
    const bid = newId('crash');
    await world.broadcast(bid);
    await crashedClaim(bid, { sendingAt: Date.now() - 59_000 });
    await world.jobs(bid, 1);
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'ambiguous'), { message: 'ambiguous' });
    const markedAt = Date.now();
    expect(world.api.callsFor(bid)).toHaveLength(0);
    const call = await waitFor(() => world.api.callsFor(bid)[0], { message: 're-placed after the resolution timeout' });
    expect(call.at - markedAt).toBeGreaterThanOrEqual(900);
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'placed'), { message: 'placed' });
    expect(world.api.callsFor(bid)).toHaveLength(1);
  });

  it('takes over a claim that was never sent (its holder died waiting for the pacer) without an ambiguity wait', async () => {
    await world.dialer({ ambiguityTimeoutMs: 60_000, claimGraceMs: 5000 });
    const bid = newId('unsent');
    await world.broadcast(bid);
    await crashedClaim(bid, {});
    await world.jobs(bid, 1);
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'placed'), { message: 'placed by the new holder' });
    expect(world.api.callsFor(bid)).toHaveLength(1);
    expect(world.of('attempt', bid).filter((e) => e.phase === 'ambiguous')).toEqual([]);
    const entry = await world.buckets.ledger.get(`${bid}.c0.1`);
    expect(entry?.json<{ owner: string; state: string }>()).toMatchObject({ state: 'placed' });
    expect(entry?.json<{ owner: string }>().owner).not.toBe('crashed');
  });

  it('a holder whose claim was taken over while it waited for the pacer never sends the create', async () => {
    // One call every 2 s for this broadcast: the later contacts wait seconds in the pacer, claimed.
    const holder = await world.dialer({ claimGraceMs: 1500 });
    const bid = newId('stale');
    await world.broadcast(bid, { pacing: { callsPerSecond: 0.5 } });
    await world.jobs(bid, 4);
    const key = `${bid}.c2.1`;
    // Another replica takes the claim over (as after a long stall of the holder) and then dies before sending.
    await waitFor(async () => {
      const entry = await world.buckets.ledger.get(key);
      if (!entry || entry.json<{ state: string }>().state !== 'claimed') return false;
      const taken = { ...entry.json<Record<string, unknown>>(), owner: 'other-replica', claimedAt: Date.now(), renewedAt: Date.now() };
      // The holder renews its claim meanwhile: a moved revision means try again.
      return world.buckets.ledger.update(key, JSON.stringify(taken), entry.revision).then(() => true, () => false);
    }, { message: 'c2 claimed, then taken over' });
    // The old holder gets its pacer grant for c2, finds the claim is no longer its own, and sends nothing.
    await waitFor(() => holder.stats().claimsLost === 1, { timeoutMs: 20_000, message: 'the old holder dropped its grant' });
    expect(world.api.callsFor(bid).filter((c) => c.c === 'c2')).toEqual([]);
    // The other replica never renews its claim: after the grace it is taken over and c2 is called once.
    await waitFor(() => world.api.callsFor(bid).find((c) => c.c === 'c2'), { timeoutMs: 20_000, message: 'c2 called after the take-over' });
    await waitFor(() => world.of('attempt', bid).filter((e) => e.phase === 'placed').length === 4, { timeoutMs: 20_000, message: 'all placed' });
    expect(world.api.callsFor(bid).filter((c) => c.c === 'c2')).toHaveLength(1);
    expect(world.api.callsFor(bid)).toHaveLength(4);
  }, 60_000);

  it('on stop finishes creates in flight, returns the rest, and a new replica calls each contact once', async () => {
    const first = await world.dialer({ accountCps: 5 });
    const bid = newId('restart');
    await world.broadcast(bid);
    world.api.reply = () => ({ status: 201, delayMs: 150 });
    await world.jobs(bid, 6);
    await waitFor(() => world.api.callsFor(bid).length >= 1, { message: 'first create sent' });
    await first.stop();
    const made = world.api.callsFor(bid).length;
    expect(made).toBeLessThan(6);
    // Every create that reached the API before the stop was recorded as placed.
    await waitFor(() => world.of('attempt', bid).filter((e) => e.phase === 'placed').length === made, { message: 'in-flight recorded' });
    await world.dialer({ accountCps: 50 });
    await waitFor(() => world.api.callsFor(bid).length === 6, { message: 'rest dialled by the new replica' });
    await waitFor(() => world.of('attempt', bid).filter((e) => e.phase === 'placed').length === 6, { message: 'all placed' });
    expect(new Set(world.api.callsFor(bid).map((c) => c.c)).size).toBe(6);
  });
});

// Its own NATS server: restarting the shared one upset the harness's event capture for later tests.
describe('dialer: a NATS outage', () => {
  const isolated = new World();
  beforeAll(() => isolated.start());
  afterEach(() => isolated.stopDialers());
  afterAll(() => isolated.stop());

  it('records a call whose create was answered while NATS was down, and never places it again', async () => {
    // Short ack wait, grace and ambiguity timeout: were the placed call left unrecorded, the job would be
    // redelivered, its claim declared ambiguous and the call placed again within seconds.
    await isolated.dialer({ ackWaitMs: 2000, claimGraceMs: 2500, ambiguityTimeoutMs: 1500 });
    const bid = newId('outage');
    await isolated.broadcast(bid);
    let outage: Promise<void> | undefined;
    isolated.api.reply = (call) => {
      if (call.b !== bid) return { status: 201 };
      outage ??= isolated.nats.stop();
      return { status: 201, delayMs: 300 }; // answered once NATS is down
    };
    await isolated.jobs(bid, 1);
    await waitFor(() => outage !== undefined, { message: 'create sent' });
    await outage;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await isolated.nats.restart();
    const entry = await waitFor(async () => {
      const value = (await isolated.buckets.ledger.get(`${bid}.c0.1`).catch(() => null))?.json<{ state: string; uuid?: string }>();
      return value?.state === 'placed' ? value : undefined;
    }, { timeoutMs: 30_000, message: 'the placed call recorded after the outage' });
    expect(entry.uuid).toBe(isolated.api.callsFor(bid)[0]!.uuid);
    // An absence is only seen over a window: longer than ack wait + grace + ambiguity timeout.
    const until = Date.now() + 7000;
    await waitFor(() => Date.now() >= until, { timeoutMs: 10_000, intervalMs: 200 });
    expect(isolated.api.callsFor(bid)).toHaveLength(1);
  }, 60_000);
});
