import { waitFor } from '@clarion/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { World } from './harness.js';

// Placed calls whose final events never come (the provider forgot them, or its webhook retries ran
// out while we were down) are resolved by the attempt watchdog with GET /v1/calls/{uuid}.

const world = new World();
let seq = 0;
const newId = (label: string) => `${label}-${++seq}-${Date.now().toString(36)}`;
/** Short watchdog timings; the scan interval is long so the tests see the placing replica's timer and the start scan. */
const fast = { attemptResultTimeoutMs: 1500, statusRecheckMs: 700, watchdogScanMs: 60_000, statusCheckLimit: 3 };
const once = { retry: { maxAttempts: 1, delaySeconds: 0, on: ['busy' as const] } };

beforeAll(() => world.start());
afterEach(async () => {
  await world.stopDialers();
  world.api.reply = () => ({ status: 201 });
  world.api.lookup = () => ({ status: 404, body: { title: 'Not found' } });
});
afterAll(() => world.stop());

const finalOf = (bid: string, cid: string) => world.of('contact', bid).find((e) => e.contactId === cid);
const outcomesOf = (bid: string) => world.of('attempt', bid).filter((e) => e.phase === 'outcome');
const lookupsOf = (uuid: string) => world.api.lookups.filter((u) => u === uuid).length;

describe('attempt watchdog', () => {
  it('asks the Voice API once the result is overdue: completed counts as answered, with what events said', async () => {
    await world.dialer(fast);
    const bid = newId('wd-completed');
    await world.broadcast(bid, once);
    world.api.lookup = (uuid) => ({ status: 200, body: { uuid, status: 'completed', start_time: '2026-01-01T00:00:01.000Z' } });
    await world.jobs(bid, 1);
    const call = await waitFor(() => world.api.callsFor(bid)[0], { message: 'call placed' });
    await world.callEvents(call, ['started', 'ringing']);
    const final = await waitFor(() => finalOf(bid, 'c0'), { message: 'contact final', timeoutMs: 20_000 });
    expect(final).toMatchObject({ state: 'answered', attempts: 1 });
    expect(outcomesOf(bid)).toEqual([expect.objectContaining({ outcome: 'answered', uuid: call.uuid, reason: expect.stringContaining('status completed') })]);
    expect(lookupsOf(call.uuid)).toBe(1);
    expect(world.api.callsFor(bid)).toHaveLength(1);
  });

  it('a busy status gives busy, and the retry policy applies as for events', async () => {
    await world.dialer(fast);
    const bid = newId('wd-busy');
    await world.broadcast(bid, { retry: { maxAttempts: 2, delaySeconds: 0, on: ['busy'] } });
    world.api.lookup = (uuid) => ({ status: 200, body: { uuid, status: 'busy', start_time: null } });
    await world.jobs(bid, 1);
    const first = await waitFor(() => world.api.callsFor(bid)[0], { message: 'first call' });
    // Attempt 2 is placed after the watchdog's busy outcome; its events come normally.
    const second = await waitFor(() => world.api.callsFor(bid)[1], { message: 'retry placed', timeoutMs: 20_000 });
    expect(second.a).toBe(2);
    await world.callEvents(second, ['started', 'ringing', 'answered', 'completed']);
    const final = await waitFor(() => finalOf(bid, 'c0'), { message: 'contact final', timeoutMs: 20_000 });
    expect(final).toMatchObject({ state: 'answered', attempts: 2 });
    expect(outcomesOf(bid).find((e) => e.attempt === 1)).toMatchObject({ outcome: 'busy', uuid: first.uuid });
    expect(lookupsOf(second.uuid)).toBe(0); // its events came in time: nobody asked
  });

  it('a call the Voice API does not know (404) ends unknown with the reason, and is not called again', async () => {
    await world.dialer(fast);
    const bid = newId('wd-404');
    await world.broadcast(bid, once);
    await world.jobs(bid, 1);
    const call = await waitFor(() => world.api.callsFor(bid)[0], { message: 'call placed' });
    const final = await waitFor(() => finalOf(bid, 'c0'), { message: 'contact final', timeoutMs: 20_000 });
    expect(final).toMatchObject({ state: 'unknown', attempts: 1, reason: expect.stringContaining('404') });
    expect(outcomesOf(bid)).toEqual([expect.objectContaining({ outcome: 'unknown', uuid: call.uuid })]);
    // followedUp is recorded just after the final is published: wait for it rather than race it.
    const entry = await waitFor(
      async () => {
        const value = (await world.buckets.ledger.get(`${bid}.c0.1`))?.json<{ state: string; outcome: string; followedUp?: boolean }>();
        return value?.followedUp ? value : undefined;
      },
      { message: 'ledger entry followed up' },
    );
    expect(entry).toMatchObject({ state: 'final', outcome: 'unknown', followedUp: true });
    expect(world.api.callsFor(bid)).toHaveLength(1);
  });

  it('a call still ringing is checked again, up to the limit, then ends unknown; a late terminal status wins', async () => {
    await world.dialer(fast);
    const bid = newId('wd-ringing');
    await world.broadcast(bid, once);
    await world.jobs(bid, 2);
    const calls = await waitFor(() => (world.api.callsFor(bid).length === 2 ? world.api.callsFor(bid) : undefined), { message: 'two calls' });
    const late = calls.find((c) => c.c === 'c1')!;
    // c0 rings for ever; c1 rings at the first check and is busy at the second.
    world.api.lookup = (uuid) => ({
      status: 200,
      body: { uuid, status: uuid === late.uuid && lookupsOf(uuid) >= 2 ? 'busy' : 'ringing' },
    });
    const stuck = await waitFor(() => finalOf(bid, 'c0'), { message: 'c0 final', timeoutMs: 30_000 });
    expect(stuck).toMatchObject({ state: 'unknown', reason: expect.stringContaining('after 3 status checks') });
    expect(lookupsOf(calls.find((c) => c.c === 'c0')!.uuid)).toBe(3);
    expect(await waitFor(() => finalOf(bid, 'c1'), { message: 'c1 final', timeoutMs: 30_000 })).toMatchObject({ state: 'busy' });
    expect(lookupsOf(late.uuid)).toBe(2);
  });

  it('a replica started after the placing one stopped resolves the attempt; two replicas ask only once', async () => {
    const placing = await world.dialer({ ...fast, attemptResultTimeoutMs: 4000 });
    const bid = newId('wd-restart');
    await world.broadcast(bid, once);
    await world.jobs(bid, 1);
    const call = await waitFor(() => world.api.callsFor(bid)[0], { message: 'call placed' });
    await waitFor(async () => (await world.buckets.ledger.get(`${bid}.c0.1`))?.json<{ state: string }>().state === 'placed', { message: 'placed in ledger' });
    await placing.stop(); // its timers die with it, before the deadline
    expect(finalOf(bid, 'c0')).toBeUndefined();
    await Promise.all([world.dialer({ ...fast, attemptResultTimeoutMs: 4000 }), world.dialer({ ...fast, attemptResultTimeoutMs: 4000 })]);
    const final = await waitFor(() => finalOf(bid, 'c0'), { message: 'resolved by a new replica', timeoutMs: 30_000 });
    expect(final).toMatchObject({ state: 'unknown' });
    // Both new replicas found the open attempt; the CAS on the entry let one of them ask.
    expect(lookupsOf(call.uuid)).toBe(1);
    expect(outcomesOf(bid)).toHaveLength(1);
    expect(world.api.callsFor(bid)).toHaveLength(1);
  });

  it('an attempt whose creates stay ambiguous ends failed after the place limit instead of hanging', async () => {
    await world.dialer({ ...fast, ambiguityTimeoutMs: 800, ambiguousPlaceLimit: 2 }, 300);
    const bid = newId('wd-ambig');
    await world.broadcast(bid, once);
    world.api.reply = () => 'hang';
    await world.jobs(bid, 1);
    const final = await waitFor(() => finalOf(bid, 'c0'), { message: 'contact final', timeoutMs: 30_000 });
    expect(final).toMatchObject({ state: 'failed', attempts: 1 });
    const outcome = world.of('attempt', bid).find((e) => e.phase === 'outcome');
    expect(outcome).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('ambiguous 2 times with no call event') });
    expect(world.api.callsFor(bid)).toHaveLength(2);
  });

  it('a provider failing creates for minutes does not skip people: the failed attempt is retried by policy (chaos finding)', async () => {
    await world.dialer({ ...fast, ambiguityTimeoutMs: 600, ambiguousPlaceLimit: 2 }, 300);
    const bid = newId('wd-outage');
    await world.broadcast(bid, { retry: { maxAttempts: 2, delaySeconds: 0, on: ['failed'] } });
    world.api.reply = () => 'hang';
    await world.jobs(bid, 1);
    await waitFor(() => world.of('attempt', bid).find((e) => e.phase === 'outcome'), { message: 'attempt 1 ended', timeoutMs: 30_000 });
    world.api.reply = () => ({ status: 201 }); // the provider is back
    const second = await waitFor(() => world.api.callsFor(bid).find((c) => c.a === 2), { message: 'attempt 2 placed', timeoutMs: 30_000 });
    await world.callEvents(second, ['started', 'answered', 'completed']);
    expect(await waitFor(() => finalOf(bid, 'c0'), { message: 'final', timeoutMs: 30_000 })).toMatchObject({ state: 'answered', attempts: 2 });
  });
});
