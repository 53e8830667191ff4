import { randomUUID } from 'node:crypto';
import type { AttemptEvent, BroadcastEvent, CallEvent, ContactFinal, DialJob, KeypressEvent, StreamEvent } from '@clarion/contracts';
import type { BulkOperation, Doc, Store } from '@clarion/store';
import { attemptDocKey, COLLECTIONS, contactKey, encodeSignal, setMemberKey, type ContactDoc } from './records.js';

/** One input of the aggregation: an event from stream EVENTS or a first-attempt dial job from DIAL. */
export type ReportInput = { kind: 'event'; event: StreamEvent } | { kind: 'job'; job: DialJob };

/** What one applied batch changed, for refreshes, live streams and logs. */
export interface BatchResult {
  broadcasts: Set<string>;
  /** ContactFinal events that lost to an earlier, different final state. */
  finalConflicts: { broadcastId: string; contactId: string; kept: string; ignored: string }[];
}

/**
 * Upserts merged per document: every operator used is commutative ($min, $max, $set of one path per set member, $set of
 * values that never differ between deliveries), so merging a batch equals applying it one by one.
 */
class UpsertSet {
  private readonly docs = new Map<string, { set: Doc; setOnInsert: Doc; min: Doc; max: Doc }>();

  private entry(id: string) {
    let e = this.docs.get(id);
    if (!e) {
      e = { set: {}, setOnInsert: {}, min: {}, max: {} };
      this.docs.set(id, e);
    }
    return e;
  }
  touch(id: string, setOnInsert: Doc = {}): this {
    Object.assign(this.entry(id).setOnInsert, setOnInsert);
    return this;
  }
  set(id: string, values: Doc): this {
    const e = this.entry(id);
    for (const [k, v] of Object.entries(values)) if (v !== undefined) e.set[k] = v;
    return this;
  }
  min(id: string, field: string, value: string | number | undefined): this {
    if (value === undefined) return this;
    const e = this.entry(id);
    const cur = e.min[field] as string | number | undefined;
    if (cur === undefined || value < cur) e.min[field] = value;
    return this;
  }
  max(id: string, field: string, value: string | number | undefined): this {
    if (value === undefined) return this;
    const e = this.entry(id);
    const cur = e.max[field] as string | number | undefined;
    if (cur === undefined || value > cur) e.max[field] = value;
    return this;
  }
  /**
   * Add a member to a set field, stored as `{<key of value>: value}` and written with `$set` of one
   * path per member: as commutative as `$addToSet`, and on the store's fast update path.
   */
  add(id: string, field: string, value: string | undefined | null): this {
    if (value === undefined || value === null || value === '') return this;
    this.entry(id).set[`${field}.${setMemberKey(value)}`] = value;
    return this;
  }
  get size(): number {
    return this.docs.size;
  }
  operations(): BulkOperation[] {
    const ops: BulkOperation[] = [];
    for (const [id, e] of this.docs) {
      const update: Doc = {};
      if (Object.keys(e.setOnInsert).length > 0) update.$setOnInsert = e.setOnInsert;
      if (Object.keys(e.set).length > 0) update.$set = e.set;
      if (Object.keys(e.min).length > 0) update.$min = e.min;
      if (Object.keys(e.max).length > 0) update.$max = e.max;
      // An update needs at least one operator; $setOnInsert of _id-only documents would be empty.
      if (Object.keys(update).length === 0) update.$setOnInsert = { seen: true };
      ops.push({ updateOne: { filter: { _id: id }, update, upsert: true } });
    }
    return ops;
  }
}

const PHASE = { calling: 1, finishing: 2, waiting: 3 } as const;
const ENDING_STATUSES = new Set(['completed', 'rejected', 'failed', 'busy', 'timeout', 'unanswered', 'cancelled', 'error']);
const ANSWER_STATUSES = new Set(['answered', 'human', 'machine']);

/** Epoch ms as an ISO time; undefined when out of the Date range (a schema-valid but absurd value). */
function isoOfMs(ms: number): string | undefined {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** ISO times with offsets do not sort as strings: store every time in UTC `Z` form. */
function normalizeTimes(event: StreamEvent): StreamEvent {
  const utc = (t: string): string => (t.endsWith('Z') && t.length === 24 ? t : new Date(t).toISOString());
  if (event.kind === 'call') return { ...event, timestamp: utc(event.timestamp), receivedAt: utc(event.receivedAt) };
  return { ...event, at: utc(event.at) };
}

/** Translates a batch of inputs into idempotent, order-independent store writes. */
class BatchPlan {
  readonly broadcasts = new UpsertSet();
  readonly contacts = new UpsertSet();
  readonly attempts = new UpsertSet();
  /** Highest pending progress per contact (`attempt*10 + phase`), the state it means and, when waiting, the retry's due time. */
  readonly progress = new Map<string, { p: number; state: string; retryAt?: string }>();
  /** Outcome of the highest attempt per contact. */
  readonly lastOutcome = new Map<string, { attempt: number; outcome: string }>();
  /** First final state per contact in this batch (stream order). */
  readonly finals = new Map<string, ContactFinal>();
  readonly ignoredFinals: ContactFinal[] = [];
  /** Corrections of final states stored before this batch (`supersedes` → `state`), chained per contact. */
  readonly upgrades = new Map<string, ContactFinal & { supersedes: string }>();
  readonly touched = new Set<string>();

  private contact(bid: string, cid: string): string {
    const id = contactKey(bid, cid);
    this.contacts.touch(id, { broadcastId: bid, contactId: cid, state: 'queued', final: false, progress: 0, lastOutcomeAttempt: 0 });
    return id;
  }
  private attempt(bid: string, cid: string, n: number): string {
    const id = attemptDocKey(bid, cid, n);
    this.attempts.touch(id, { broadcastId: bid, contactId: cid, attempt: n });
    return id;
  }
  private advance(id: string, p: number, state: string, retryAt?: string): void {
    const cur = this.progress.get(id);
    if (!cur || p > cur.p) this.progress.set(id, retryAt === undefined ? { p, state } : { p, state, retryAt });
  }

  add(input: ReportInput): void {
    if (input.kind === 'job') return this.job(input.job);
    const event = normalizeTimes(input.event);
    this.touched.add(event.broadcastId);
    switch (event.kind) {
      case 'broadcast':
        return this.broadcast(event);
      case 'attempt':
        return this.attemptEvent(event);
      case 'call':
        return this.call(event);
      case 'keypress':
        return this.keypress(event);
      case 'contact':
        return this.final(event);
    }
  }

  private job(job: DialJob): void {
    this.touched.add(job.broadcastId);
    const id = this.contact(job.broadcastId, job.contactId);
    this.contacts.set(id, { number: job.number, name: job.name }).max(id, 'attempts', 0);
  }

  private broadcast(e: BroadcastEvent): void {
    const id = e.broadcastId;
    this.broadcasts.min(id, 'firstSeenAt', e.at).set(id, { name: e.name, priority: e.priority, acknowledgement: e.acknowledgement });
    if (e.type === 'created') this.broadcasts.min(id, 'createdAt', e.at);
    else if (e.type === 'enqueued') {
      if (e.counts) {
        const c = e.counts;
        this.broadcasts.set(id, { counts: c, audience: c.accepted + c.duplicate + c.suppressed });
      }
      this.broadcasts.min(id, 'enqueuedAt', e.at);
    } else {
      this.broadcasts.add(id, 'lifecycle', `${e.at}|${e.type}`);
      // Every reason is kept with its event (a pause's reason matters only while that pause lasts).
      if (e.reason) this.broadcasts.add(id, 'lifecycleReasons', `${e.at}|${e.type}|${e.reason}`);
      if (e.reason && (e.type === 'cancelled' || e.type === 'halted')) this.broadcasts.set(id, { reason: e.reason });
    }
  }

  private attemptEvent(e: AttemptEvent): void {
    const bid = e.broadcastId;
    const cid = this.contact(bid, e.contactId);
    this.contacts.set(cid, { number: e.number }).max(cid, 'attempts', e.attempt).max(cid, 'updatedAt', e.at);
    this.broadcasts.min(bid, 'firstSeenAt', e.at);
    const aid = this.attempt(bid, e.contactId, e.attempt);
    this.attempts.set(aid, { number: e.number, uuid: e.uuid });
    if (e.phase === 'placed' || e.phase === 'ambiguous') {
      this.attempts.min(aid, 'placedAt', e.at);
      this.broadcasts.min(bid, 'firstCallAt', e.at).max(bid, 'lastCallAt', e.at);
      this.advance(cid, e.attempt * 10 + PHASE.calling, 'calling');
      if (e.phase === 'ambiguous') this.attempts.add(aid, 'reasons', e.reason ?? 'ambiguous create');
    } else {
      const outcome = e.outcome ?? (e.phase === 'refused' ? 'failed' : undefined);
      if (outcome) {
        this.attempts.set(aid, { dialerOutcome: outcome });
        const cur = this.lastOutcome.get(cid);
        if (!cur || e.attempt > cur.attempt) this.lastOutcome.set(cid, { attempt: e.attempt, outcome });
      }
      this.attempts.add(aid, 'reasons', e.reason);
      if (e.retryAt !== undefined) this.advance(cid, e.attempt * 10 + PHASE.waiting, 'waiting_retry', isoOfMs(e.retryAt));
      else this.advance(cid, e.attempt * 10 + PHASE.finishing, 'calling');
    }
  }

  private call(e: CallEvent): void {
    const bid = e.broadcastId;
    const cid = this.contact(bid, e.contactId);
    this.contacts.max(cid, 'attempts', e.attempt).max(cid, 'updatedAt', e.timestamp);
    this.broadcasts.min(bid, 'firstSeenAt', e.timestamp);
    this.advance(cid, e.attempt * 10 + PHASE.calling, 'calling');
    const aid = this.attempt(bid, e.contactId, e.attempt);
    this.attempts
      .set(aid, { uuid: e.uuid })
      .add(aid, 'statuses', e.status)
      .add(aid, 'signals', encodeSignal(e.status, e.detail, e.digits))
      .add(aid, 'details', e.detail)
      .add(aid, 'digits', e.digits)
      .max(aid, 'duration', e.duration)
      .max(aid, 'price', e.price);
    if (e.status === 'started') this.attempts.min(aid, 'placedAt', e.timestamp);
    if (ANSWER_STATUSES.has(e.status)) this.attempts.min(aid, 'answeredAt', e.timestamp);
    if (ENDING_STATUSES.has(e.status)) this.attempts.max(aid, 'endedAt', e.timestamp);
  }

  private keypress(e: KeypressEvent): void {
    const bid = e.broadcastId;
    const cid = this.contact(bid, e.contactId);
    this.contacts.set(cid, { number: e.number }).max(cid, 'attempts', e.attempt).max(cid, 'updatedAt', e.at);
    this.advance(cid, e.attempt * 10 + PHASE.calling, 'calling');
    const aid = this.attempt(bid, e.contactId, e.attempt);
    this.attempts.set(aid, { uuid: e.uuid }).add(aid, 'digits', e.digits ?? undefined);
    // The webhook interpreted the key against the broadcast's own acknowledgement key.
    if (e.meaning === 'acknowledge') this.attempts.add(aid, 'signals', encodeSignal('input', undefined, '1'));
    else if (e.meaning !== 'none') this.attempts.add(aid, 'signals', encodeSignal('input', undefined, '-'));
  }

  private final(e: ContactFinal): void {
    const bid = e.broadcastId;
    const cid = this.contact(bid, e.contactId);
    this.contacts.set(cid, { number: e.number }).max(cid, 'attempts', e.attempts).max(cid, 'updatedAt', e.at);
    this.broadcasts.min(bid, 'firstSeenAt', e.at).max(bid, 'lastFinalAt', e.at);
    if (e.supersedes !== undefined) return this.upgrade(cid, { ...e, supersedes: e.supersedes });
    const first = this.finals.get(cid);
    if (!first) this.finals.set(cid, e);
    else if (first.state !== e.state) this.ignoredFinals.push(e);
  }

  /** A correction applies only to the state it names, so a replay or a stale one changes nothing. */
  private upgrade(cid: string, e: ContactFinal & { supersedes: string }): void {
    const first = this.finals.get(cid);
    if (first) {
      // The contact became final in this very batch: correct it before it is written and counted.
      if (first.state === e.supersedes) this.finals.set(cid, { ...first, state: e.state, reason: e.reason });
      return;
    }
    const earlier = this.upgrades.get(cid);
    if (!earlier) this.upgrades.set(cid, e);
    else if (earlier.state === e.supersedes) this.upgrades.set(cid, { ...e, supersedes: earlier.supersedes });
  }

  contactOperations(batchId: string): BulkOperation[] {
    const ops = this.contacts.operations();
    for (const [id, { p, state, retryAt }] of this.progress) {
      // `retryAt` is written with the state it belongs to, so it is only read while the contact is `waiting_retry`.
      const set: Doc = retryAt === undefined ? { state, progress: p } : { state, progress: p, retryAt };
      ops.push({ updateOne: { filter: { _id: id, final: false, progress: { $lt: p } }, update: { $set: set } } });
    }
    for (const [id, { attempt, outcome }] of this.lastOutcome) {
      ops.push({
        updateOne: { filter: { _id: id, lastOutcomeAttempt: { $lt: attempt } }, update: { $set: { lastOutcome: outcome, lastOutcomeAttempt: attempt } } },
      });
    }
    // The final state comes only from ContactFinal and is terminal: the first one stored wins.
    for (const [id, e] of this.finals) {
      // `finalBatch` + `uncounted` mark the write that really made the contact final, for the counters.
      const set: Doc = { state: e.state, final: true, finalAt: e.at, finalBatch: batchId, uncounted: true };
      if (e.reason) set.reason = e.reason;
      ops.push({ updateOne: { filter: { _id: id, final: false }, update: { $set: set } } });
    }
    for (const [id, e] of this.upgrades) {
      const reason = e.reason ? { reason: e.reason } : {};
      // Already counted: move it, and mark it for the counters (`recountFrom`, guarded by the batch id).
      ops.push({
        updateOne: {
          filter: { _id: id, final: true, state: e.supersedes, uncounted: { $exists: false }, recountFrom: { $exists: false } },
          update: { $set: { state: e.state, recountFrom: e.supersedes, upgradeBatch: batchId, ...reason } },
        },
      });
      // Not counted yet (a failed count awaiting recovery): it will be counted in its new state.
      ops.push({ updateOne: { filter: { _id: id, final: true, state: e.supersedes, uncounted: true }, update: { $set: { state: e.state, ...reason } } } });
    }
    return ops;
  }
}

/** Applies batches of inputs to the store: one bulkWrite per collection per batch. */
export class Aggregation {
  constructor(private readonly store: Store) {}

  /** Create the indexes the queries use; idempotent. */
  async ensureIndexes(): Promise<void> {
    const contacts = this.store.collection(COLLECTIONS.contacts);
    const attempts = this.store.collection(COLLECTIONS.attempts);
    const broadcasts = this.store.collection(COLLECTIONS.broadcasts);
    await contacts.createIndex({ broadcastId: 1, state: 1 }, { name: 'broadcast_state' });
    await contacts.createIndex({ broadcastId: 1, final: 1 }, { name: 'broadcast_final' });
    // Finds contacts made final but not yet added to the counters (recovery after a crash).
    await contacts.createIndex({ uncounted: 1 }, { name: 'uncounted' });
    await attempts.createIndex({ broadcastId: 1, contactId: 1 }, { name: 'broadcast_contact' });
    await attempts.createIndex({ number: 1 }, { name: 'number' });
    await broadcasts.createIndex({ firstSeenAt: -1 }, { name: 'first_seen' });
    await broadcasts.createIndex({ status: 1 }, { name: 'status' });
  }

  /** Set when a write failed: contacts may be final but not yet counted, so the next batch recovers first. */
  private mayHaveUncounted = true;

  /** Apply a batch; resolves once every write is durable in the store. */
  async apply(inputs: readonly ReportInput[]): Promise<BatchResult> {
    if (this.mayHaveUncounted) await this.recoverCounts();
    const plan = new BatchPlan();
    for (const input of inputs) plan.add(input);
    const batchId = randomUUID();
    const writes: Promise<unknown>[] = [];
    if (plan.broadcasts.size > 0) writes.push(this.store.collection(COLLECTIONS.broadcasts).bulkWrite(plan.broadcasts.operations(), { ordered: false }));
    if (plan.attempts.size > 0) writes.push(this.store.collection(COLLECTIONS.attempts).bulkWrite(plan.attempts.operations(), { ordered: false }));
    // Ordered: the upserts that create each contact come before the conditional updates on it.
    if (plan.contacts.size > 0) writes.push(this.store.collection(COLLECTIONS.contacts).bulkWrite(plan.contactOperations(batchId), { ordered: true }));
    try {
      await Promise.all(writes);
      const stored = await this.readFinals(plan);
      // The broadcast documents exist once their bulkWrite above resolved, so the counters can be added.
      await this.count(batchId, stored.filter((d) => d.finalBatch === batchId));
      const upgraded = await this.readContacts([...plan.upgrades.keys()]);
      await this.recount(batchId, upgraded.filter((d) => d.upgradeBatch === batchId && typeof d.recountFrom === 'string'));
      return { broadcasts: plan.touched, finalConflicts: this.conflicts(plan, stored) };
    } catch (error) {
      this.mayHaveUncounted = true;
      throw error;
    }
  }

  /** The stored state of every contact this batch tried to make final. */
  private readFinals(plan: BatchPlan): Promise<ContactDoc[]> {
    return this.readContacts([...plan.finals.keys()]);
  }

  private async readContacts(ids: string[]): Promise<ContactDoc[]> {
    if (ids.length === 0) return [];
    const contacts = this.store.collection<ContactDoc>(COLLECTIONS.contacts);
    const projection = { broadcastId: 1, state: 1, finalBatch: 1, recountFrom: 1, upgradeBatch: 1 } as const;
    // The embedded store answers an `_id: {$in}` query in time linear in the collection (it restores
    // natural order), but a point lookup in O(1); MongoDB is the other way round (round trips).
    return this.store.kind === 'embedded'
      ? // No projection here: the embedded store's point lookup is fastest without one (contact documents are small).
        (await Promise.all(ids.map((id) => contacts.findOne({ _id: id })))).filter((d): d is ContactDoc => d !== null)
      : await contacts.find({ _id: { $in: ids } }, { projection }).toArray();
  }

  /**
   * Add newly final contacts to their broadcast's per-state counters, exactly once: the increment is
   * guarded by the batch id (a replay of the same batch id changes nothing), then the contacts are
   * marked counted. A crash between the two is repaired by `recoverCounts` with the same batch id.
   */
  private async count(batchId: string, newlyFinal: readonly ContactDoc[]): Promise<void> {
    if (newlyFinal.length === 0) return;
    const perBroadcast = new Map<string, Map<string, number>>();
    for (const d of newlyFinal) {
      let states = perBroadcast.get(d.broadcastId);
      if (!states) perBroadcast.set(d.broadcastId, (states = new Map()));
      states.set(d.state, (states.get(d.state) ?? 0) + 1);
    }
    const ops: BulkOperation[] = [];
    for (const [bid, states] of perBroadcast) {
      const inc: Doc = {};
      let total = 0;
      for (const [state, n] of states) {
        inc[`finalCounts.${state}`] = n;
        total += n;
      }
      inc.finalTotal = total;
      ops.push({ updateOne: { filter: { _id: bid, countedBatches: { $ne: batchId } }, update: { $inc: inc, $push: { countedBatches: batchId } } } });
    }
    await this.store.collection(COLLECTIONS.broadcasts).bulkWrite(ops, { ordered: false });
    await this.store
      .collection(COLLECTIONS.contacts)
      .bulkWrite(newlyFinal.map((d) => ({ updateOne: { filter: { _id: d._id }, update: { $unset: { uncounted: '' } } } })), { ordered: false });
  }

  /**
   * Move corrected contacts from their old state's counter to the new one, exactly once (guarded by
   * `<batch>:up` as `count` is by the batch id), then clear the mark; `recoverCounts` repeats a crashed one.
   */
  private async recount(batchId: string, moved: readonly ContactDoc[]): Promise<void> {
    if (moved.length === 0) return;
    const perBroadcast = new Map<string, Doc>();
    for (const d of moved) {
      const inc = perBroadcast.get(d.broadcastId) ?? {};
      inc[`finalCounts.${d.state}`] = ((inc[`finalCounts.${d.state}`] as number | undefined) ?? 0) + 1;
      inc[`finalCounts.${String(d.recountFrom)}`] = ((inc[`finalCounts.${String(d.recountFrom)}`] as number | undefined) ?? 0) - 1;
      perBroadcast.set(d.broadcastId, inc);
    }
    const guard = `${batchId}:up`;
    await this.store.collection(COLLECTIONS.broadcasts).bulkWrite(
      [...perBroadcast].map(([bid, inc]) => ({ updateOne: { filter: { _id: bid, countedBatches: { $ne: guard } }, update: { $inc: inc, $push: { countedBatches: guard } } } })),
      { ordered: false },
    );
    await this.store
      .collection(COLLECTIONS.contacts)
      .bulkWrite(moved.map((d) => ({ updateOne: { filter: { _id: d._id }, update: { $unset: { recountFrom: '', upgradeBatch: '' } } } })), { ordered: false });
  }

  /** Count contacts left final-but-uncounted (or corrected but not moved) by a crash or a failed write (run at start and after a failure). */
  async recoverCounts(): Promise<number> {
    const contacts = this.store.collection<ContactDoc>(COLLECTIONS.contacts);
    const left = await contacts.find({ uncounted: true }, { projection: { broadcastId: 1, state: 1, finalBatch: 1 } }).toArray();
    const byBatch = new Map<string, ContactDoc[]>();
    for (const d of left) {
      const id = typeof d.finalBatch === 'string' ? d.finalBatch : 'unknown';
      byBatch.set(id, [...(byBatch.get(id) ?? []), d]);
    }
    for (const [batchId, docs] of byBatch) await this.count(batchId, docs);
    const moved = await contacts.find({ recountFrom: { $exists: true } }, { projection: { broadcastId: 1, state: 1, recountFrom: 1, upgradeBatch: 1 } }).toArray();
    const byUpgrade = new Map<string, ContactDoc[]>();
    for (const d of moved) {
      const id = typeof d.upgradeBatch === 'string' ? d.upgradeBatch : 'unknown';
      byUpgrade.set(id, [...(byUpgrade.get(id) ?? []), d]);
    }
    for (const [batchId, docs] of byUpgrade) await this.recount(batchId, docs);
    this.mayHaveUncounted = false;
    return left.length + moved.length;
  }

  /** Finals that lost to an earlier, different one (in this batch or before), for the log. */
  private conflicts(plan: BatchPlan, stored: readonly ContactDoc[]): BatchResult['finalConflicts'] {
    const out: BatchResult['finalConflicts'] = [];
    const kept = new Map(stored.map((d) => [d._id, d.state]));
    for (const e of [...plan.finals.values(), ...plan.ignoredFinals]) {
      const state = kept.get(contactKey(e.broadcastId, e.contactId));
      if (state !== undefined && state !== e.state) {
        out.push({ broadcastId: e.broadcastId, contactId: e.contactId, kept: state, ignored: e.state });
      }
    }
    return out;
  }
}

/**
 * Collects inputs into batches of up to `size` (or whatever arrived within `ms`), applies each batch
 * with one write per collection, and settles every submitter once its batch is durable.
 */
export class Batcher {
  private pending: { input: ReportInput; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly apply: (inputs: ReportInput[]) => Promise<void>,
    private readonly size: number,
    private readonly ms: number,
  ) {}

  submit(input: ReportInput): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (this.pending.length >= this.size) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.ms);
    });
  }

  /** Write what is pending now; batches are written one after another. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return this.flushing;
    this.flushing = this.flushing.then(async () => {
      try {
        await this.apply(batch.map((b) => b.input));
        for (const b of batch) b.resolve();
      } catch (error) {
        for (const b of batch) b.reject(error);
      }
    });
    return this.flushing;
  }
}
