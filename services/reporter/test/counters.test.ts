import { describe, expect, it } from 'vitest';
import type { DialJob, FinalState, StreamEvent } from '@clarion/contracts';
import type { BulkOperation, Collection, Doc, Store } from '@clarion/store';
import { Aggregation, type ReportInput } from '../src/aggregate.js';
import { Reports } from '../src/queries.js';
import { COLLECTIONS, type ContactDoc } from '../src/records.js';
import { recordedBroadcast, shuffle, startHarness, STORES } from './helpers.js';

const inputsOf = (items: (StreamEvent | DialJob)[]): ReportInput[] =>
  items.map((item) => ('kind' in item ? { kind: 'event', event: item } : { kind: 'job', job: item }));

/** A store whose bulkWrite fails (after doing nothing) while `failWhen` says so: a crash at that point. */
function crashingStore(inner: Store, failWhen: (collection: string, ops: BulkOperation[]) => boolean): Store & { armed: boolean } {
  const wrapped = {
    armed: true,
    get kind() {
      return inner.kind;
    },
    collection<T extends Doc>(name: string): Collection<T> {
      const c = inner.collection<T>(name);
      return new Proxy(c, {
        get(target, prop, receiver) {
          if (prop === 'bulkWrite') {
            return (ops: BulkOperation<T>[], options?: { ordered?: boolean }) =>
              wrapped.armed && failWhen(name, ops as BulkOperation[]) ? Promise.reject(new Error('simulated crash')) : target.bulkWrite(ops, options);
          }
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
  return wrapped as unknown as Store & { armed: boolean };
}

const isCounterWrite = (collection: string, ops: BulkOperation[]) =>
  collection === COLLECTIONS.broadcasts && ops.some((op) => 'updateOne' in op && '$inc' in (op.updateOne.update as Doc));
const isCountedMark = (collection: string, ops: BulkOperation[]) =>
  collection === COLLECTIONS.contacts && ops.some((op) => 'updateOne' in op && '$unset' in (op.updateOne.update as Doc));

const EXPECTED = { acknowledged: 1, answered: 1, no_answer: 1, invalid_number: 1, voicemail: 1, suppressed: 1, duplicate: 1 };
/** EXPECTED after the `answered` contact was corrected to `acknowledged` (states counted 0 are not listed). */
const UPGRADED = { acknowledged: 2, no_answer: 1, invalid_number: 1, voicemail: 1, suppressed: 1, duplicate: 1 };

describe.each(STORES)('per-state counters on the $name store', ({ open }) => {
  it('equal a full scan of the contacts after shuffled, duplicated and replayed batches', async () => {
    const store = await open();
    const aggregation = new Aggregation(store);
    await aggregation.ensureIndexes();
    const bid = 'counters-replay';
    const events = inputsOf(recordedBroadcast(bid));
    const messy = shuffle([...events, ...shuffle(events, 5).slice(0, 30)], 11);
    for (let i = 0; i < messy.length; i += 7) await aggregation.apply(messy.slice(i, i + 7));
    // A redelivery of everything (e.g. after an ack was lost) changes no counter.
    await aggregation.apply(events);
    const reports = new Reports(store, () => new Date('2026-03-02T11:00:00Z'));
    const summary = await reports.summary(bid);
    expect(summary?.counts).toEqual(EXPECTED);
    expect(await reports.scanStateCounts(bid)).toEqual(EXPECTED);
    await store.close();
  });

  for (const [point, failWhen] of [
    ['after the contacts became final, before the counters', isCounterWrite],
    ['after the counters, before the contacts were marked counted', isCountedMark],
  ] as const) {
    it(`counts every contact exactly once after a crash ${point}`, async () => {
      const inner = await open();
      const store = crashingStore(inner, failWhen);
      const bid = `counters-crash-${failWhen === isCounterWrite ? 'a' : 'b'}`;
      const events = inputsOf(recordedBroadcast(bid));
      const first = new Aggregation(store);
      await first.ensureIndexes();
      await expect(first.apply(events)).rejects.toThrow('simulated crash');

      // "Restart": a new aggregation on the same store repairs the counters, then JetStream redelivers the batch.
      store.armed = false;
      const second = new Aggregation(store);
      await second.ensureIndexes();
      await second.apply(events);
      const reports = new Reports(store, () => new Date('2026-03-02T11:00:00Z'));
      expect((await reports.summary(bid))?.counts).toEqual(EXPECTED);
      expect(await inner.collection(COLLECTIONS.contacts).countDocuments({ uncounted: true })).toBe(0);
      await inner.close();
    });
  }

  it('a correction moves a final contact (and its counter) forward once; stale or replayed ones change nothing', async () => {
    const store = await open();
    const aggregation = new Aggregation(store);
    await aggregation.ensureIndexes();
    const bid = 'counters-upgrade';
    await aggregation.apply(inputsOf(recordedBroadcast(bid)));
    const final = (contactId: string, state: FinalState, supersedes?: FinalState): StreamEvent => ({
      kind: 'contact',
      broadcastId: bid,
      contactId,
      state,
      attempts: 1,
      at: '2026-03-02T10:30:00.000Z',
      reason: 'late event',
      ...(supersedes ? { supersedes } : {}),
    });
    // c3 ended answered; a late keypress proves it acknowledged. Applied twice (a redelivery).
    const answered = (await store.collection<ContactDoc>(COLLECTIONS.contacts).find({ broadcastId: bid, state: 'answered' }).toArray())[0]!;
    const correction = final(answered.contactId, 'acknowledged', 'answered');
    await aggregation.apply(inputsOf([correction]));
    await aggregation.apply(inputsOf([correction, final(answered.contactId, 'voicemail', 'busy')]));
    const expected = UPGRADED;
    const reports = new Reports(store, () => new Date('2026-03-02T11:00:00Z'));
    expect((await reports.summary(bid))?.counts).toEqual(expected);
    expect(await reports.scanStateCounts(bid)).toEqual(expected);
    // A plain (uncorrected) final for a contact that is already final still changes nothing.
    await aggregation.apply(inputsOf([final(answered.contactId, 'no_answer')]));
    expect((await reports.summary(bid))?.counts).toEqual(expected);
    await store.close();
  });

  it('a correction in the same batch as the final it corrects is counted once, in the corrected state', async () => {
    const store = await open();
    const aggregation = new Aggregation(store);
    await aggregation.ensureIndexes();
    const bid = 'counters-upgrade-same-batch';
    const events = recordedBroadcast(bid);
    const original = events.find((e): e is StreamEvent & { kind: 'contact' } => 'kind' in e && e.kind === 'contact' && e.state === 'answered')!;
    await aggregation.apply(inputsOf([...events, { ...original, state: 'acknowledged', supersedes: 'answered' }]));
    const expected = UPGRADED;
    const reports = new Reports(store, () => new Date('2026-03-02T11:00:00Z'));
    expect((await reports.summary(bid))?.counts).toEqual(expected);
    expect(await reports.scanStateCounts(bid)).toEqual(expected);
    await store.close();
  });

  it('a correction interrupted before the counters moved is finished at restart, once', async () => {
    const inner = await open();
    const bid = 'counters-upgrade-crash';
    const plain = new Aggregation(inner);
    await plain.ensureIndexes();
    const events = recordedBroadcast(bid);
    await plain.apply(inputsOf(events));
    const original = events.find((e): e is StreamEvent & { kind: 'contact' } => 'kind' in e && e.kind === 'contact' && e.state === 'answered')!;
    const correction = inputsOf([{ ...original, state: 'acknowledged', supersedes: 'answered' }]);
    const store = crashingStore(inner, isCounterWrite);
    await expect(new Aggregation(store).apply(correction)).rejects.toThrow('simulated crash');
    store.armed = false;
    const second = new Aggregation(store);
    await second.apply(correction);
    const expected = UPGRADED;
    const reports = new Reports(store, () => new Date('2026-03-02T11:00:00Z'));
    expect((await reports.summary(bid))?.counts).toEqual(expected);
    expect(await reports.scanStateCounts(bid)).toEqual(expected);
    expect(await inner.collection(COLLECTIONS.contacts).countDocuments({ recountFrom: { $exists: true } })).toBe(0);
    await inner.close();
  });

  it('recomputes the listed status of unfinished broadcasts at start (the crash left it stale)', async () => {
    const store = await open();
    const aggregation = new Aggregation(store);
    await aggregation.ensureIndexes();
    // Everything applied, but the process died before its status refresh ran: the stored status is stale.
    await aggregation.apply(inputsOf(recordedBroadcast('stale-status')));
    await store.collection(COLLECTIONS.broadcasts).updateOne({ _id: 'stale-status' }, { $set: { status: 'running' } });
    const h = await startHarness(async () => store);
    try {
      const completed = await h.get<{ items: { id: string }[] }>('/v1/broadcasts?status=completed');
      expect(completed.body.items.map((b) => b.id)).toEqual(['stale-status']);
      expect(h.logs.some((l) => l.msg === 'broadcast statuses recomputed at start' && l.broadcasts === 1)).toBe(true);
    } finally {
      await h.close();
    }
  });
});
