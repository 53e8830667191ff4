import type { Filter, Store } from '@clarion/store';
import {
  COLLECTIONS,
  FINAL_STATE_SET,
  summarize,
  viewAttempt,
  viewContact,
  type AttemptDoc,
  type AttemptView,
  type BroadcastDoc,
  type BroadcastStatus,
  type BroadcastSummary,
  type ContactDoc,
  type ContactView,
  type RetryWindow,
} from './records.js';

/** Calls and outcomes over time. */
export interface Timeline {
  bucket: 'second' | 'minute';
  calls: { t: string; n: number }[];
  outcomes: { t: string; state: string; n: number }[];
}

/** A page of results and the cursor of the next page (null at the end). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Counting contacts per state scans a broadcast: many readers within this window share one count. */
const SUMMARY_TTL_MS = 150;
const MAX_SUMMARY_TTL_MS = 5000;

const encodeCursor = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Decode a cursor produced by this service; anything else is a client error. */
export function decodeCursor<T>(cursor: string, check: (v: unknown) => v is T): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  if (!check(value)) throw new InvalidCursorError();
  return value;
}

/** A paging cursor that this service did not produce. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
  readonly code = 'invalid_cursor';
  constructor() {
    super('cursor is not valid: pass the nextCursor of a previous page');
  }
}

const isStringPair = (v: unknown): v is [string, string] =>
  Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string';
const isString = (v: unknown): v is string => typeof v === 'string';

/** Splits `a,b,c` into states; `pending` and `final` are shorthands over the final flag. */
function stateFilter(state: string | undefined, notState: string | undefined): Filter {
  const filter: Filter = {};
  const split = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
  if (state) {
    const states = split(state);
    if (states.length === 1 && states[0] === 'pending') filter.final = false;
    else if (states.length === 1 && states[0] === 'final') filter.final = true;
    else filter.state = { $in: states };
  }
  if (notState) {
    const states = split(notState);
    const excluded = states.flatMap((s) => (s === 'final' ? [...FINAL_STATE_SET] : s === 'pending' ? ['queued', 'calling', 'waiting_retry'] : [s]));
    if (filter.state) filter.$and = [{ state: { $nin: excluded } }];
    else filter.state = { $nin: excluded };
  }
  return filter;
}

/** Read side: summaries, listings, contacts, attempts and exports, all from the store. */
export class Reports {
  constructor(
    private readonly store: Store,
    private readonly clock: () => Date,
  ) {}

  private get broadcasts() {
    return this.store.collection<BroadcastDoc>(COLLECTIONS.broadcasts);
  }
  private get contactsCol() {
    return this.store.collection<ContactDoc>(COLLECTIONS.contacts);
  }
  private get attemptsCol() {
    return this.store.collection<AttemptDoc>(COLLECTIONS.attempts);
  }

  /**
   * Number of contacts per state of one broadcast: final states from the broadcast's counters (kept
   * exactly once per contact), in-flight ones (`calling`, `waiting_retry`, bounded by concurrency) from
   * the `broadcast_state` index; `summarize` counts the rest of the audience as `queued`. Also when
   * the retries of the waiting contacts are due (the same pass).
   */
  async stateCounts(doc: BroadcastDoc): Promise<{ counts: Record<string, number>; retries: RetryWindow }> {
    const rows = await this.contactsCol
      .aggregate<{ _id: string; n: number; nextAt?: string | null; lastAt?: string | null }>([
        { $match: { broadcastId: doc._id, state: { $in: ['calling', 'waiting_retry'] } } },
        { $group: { _id: '$state', n: { $sum: 1 }, nextAt: { $min: '$retryAt' }, lastAt: { $max: '$retryAt' } } },
      ])
      .toArray();
    const counts: Record<string, number> = { ...(doc.finalCounts ?? {}) };
    const retries: RetryWindow = { nextAt: null, lastAt: null };
    for (const r of rows) {
      counts[r._id] = r.n;
      if (r._id === 'waiting_retry') Object.assign(retries, { nextAt: r.nextAt ?? null, lastAt: r.lastAt ?? null });
    }
    if (doc.audience === undefined) {
      // Without the enqueued counts the audience is unknown: count the queued contacts seen so far.
      counts.queued = await this.contactsCol.countDocuments({ broadcastId: doc._id, state: 'queued' });
    }
    return { counts, retries };
  }

  /** Recompute the per-state counts by scanning every contact (exact, slow on huge broadcasts): for checks. */
  async scanStateCounts(broadcastId: string): Promise<Record<string, number>> {
    const rows = await this.contactsCol
      .aggregate<{ _id: string; n: number }>([{ $match: { broadcastId } }, { $group: { _id: '$state', n: { $sum: 1 } } }])
      .toArray();
    return Object.fromEntries(rows.map((r) => [r._id, r.n]));
  }

  /** Summaries computed in the last SUMMARY_TTL_MS, shared by the API, live streams and refreshes. */
  private readonly recent = new Map<string, { at: number; ttl: number; value: Promise<BroadcastSummary | null> }>();

  /** True when anything is known about the broadcast (a cheap point lookup). */
  async exists(broadcastId: string): Promise<boolean> {
    return (await this.broadcasts.findOne({ _id: broadcastId }, { projection: { _id: 1 } })) !== null;
  }

  /** Forget the cached summary after this replica applied a change. */
  invalidate(broadcastId: string): void {
    // Expensive counts (huge broadcasts) keep their adaptive lifetime even while writes stream in.
    if ((this.recent.get(broadcastId)?.ttl ?? 0) <= SUMMARY_TTL_MS) this.recent.delete(broadcastId);
  }

  /** The live summary of one broadcast, or null when nothing is known about it. */
  summary(broadcastId: string): Promise<BroadcastSummary | null> {
    const now = Date.now();
    const hit = this.recent.get(broadcastId);
    if (hit && now - hit.at < hit.ttl) return hit.value;
    const entry = { at: now, ttl: SUMMARY_TTL_MS, value: Promise.resolve<BroadcastSummary | null>(null) };
    entry.value = this.broadcasts.findOne({ _id: broadcastId }, { projection: { countedBatches: 0 } }).then(async (doc) => {
      const summary = doc ? await this.summaryOf(doc) : null;
      // A count that took long (a huge broadcast) is reused for longer, so readers never saturate the store.
      entry.ttl = Math.min(MAX_SUMMARY_TTL_MS, Math.max(SUMMARY_TTL_MS, 4 * (Date.now() - now)));
      return summary;
    });
    const value = entry.value;
    this.recent.set(broadcastId, entry);
    value.catch(() => this.recent.delete(broadcastId));
    // Keep the map small: drop entries that are long expired.
    if (this.recent.size > 1000) for (const [k, v] of this.recent) if (now - v.at > v.ttl) this.recent.delete(k);
    return value;
  }

  private async summaryOf(doc: BroadcastDoc): Promise<BroadcastSummary> {
    const [{ counts, retries }, attempts] = await Promise.all([
      this.stateCounts(doc),
      this.attemptsCol.countDocuments({ broadcastId: doc._id }),
    ]);
    return summarize(doc, counts, attempts, this.clock(), retries);
  }

  /** Recompute and store the status snapshot used for listing; returns the fresh summary. */
  async refresh(broadcastId: string): Promise<BroadcastSummary | null> {
    const summary = await this.summary(broadcastId);
    if (summary) {
      await this.broadcasts.updateOne(
        { _id: broadcastId },
        { $set: { status: summary.status, completedAt: summary.timings.completedAt } },
      );
    }
    return summary;
  }

  /** Recompute the stored status of every broadcast not known to be over (at start: a crash may have left it stale). */
  async refreshUnfinished(): Promise<number> {
    const docs = await this.broadcasts
      .find({ status: { $nin: ['completed', 'cancelled'] } }, { projection: { _id: 1 } })
      .toArray();
    for (const d of docs) await this.refresh(d._id);
    return docs.length;
  }

  /** Broadcasts, newest first, optionally by (snapshot) status and first-seen time. */
  async list(options: { status?: BroadcastStatus | undefined; since?: string | undefined; cursor?: string | undefined; limit: number }): Promise<Page<BroadcastSummary>> {
    const and: Filter[] = [];
    if (options.status) and.push({ status: options.status });
    if (options.since) and.push({ firstSeenAt: { $gte: options.since } });
    if (options.cursor) {
      const [at, id] = decodeCursor(options.cursor, isStringPair);
      and.push({ $or: [{ firstSeenAt: { $lt: at } }, { firstSeenAt: at, _id: { $lt: id } }] });
    }
    const docs = await this.broadcasts
      .find(and.length > 0 ? { $and: and } : {}, { sort: { firstSeenAt: -1, _id: -1 }, limit: options.limit + 1, projection: { countedBatches: 0 } })
      .toArray();
    const page = docs.slice(0, options.limit);
    const items = await Promise.all(page.map((d) => this.summaryOf(d)));
    const last = page[page.length - 1];
    return { items, nextCursor: docs.length > options.limit && last ? encodeCursor([last.firstSeenAt ?? '', last._id]) : null };
  }

  /**
   * Calls placed and final outcomes per time bucket (`second` for broadcasts shorter than ten
   * minutes, else `minute`), for the dashboard's chart. Buckets are ISO prefixes, oldest first.
   */
  async timeline(broadcastId: string): Promise<Timeline | null> {
    const doc = await this.broadcasts.findOne({ _id: broadcastId });
    if (!doc) return null;
    const start = Date.parse(doc.firstCallAt ?? doc.firstSeenAt ?? '');
    const end = Date.parse(doc.lastFinalAt ?? doc.lastCallAt ?? '') || this.clock().getTime();
    const bucket: Timeline['bucket'] = Number.isFinite(start) && end - start > 10 * 60_000 ? 'minute' : 'second';
    const width = bucket === 'minute' ? 16 : 19;
    const [calls, outcomes] = await Promise.all([
      this.attemptsCol
        .aggregate<{ _id: string; n: number }>([
          { $match: { broadcastId, placedAt: { $type: 'string' } } },
          { $group: { _id: { $substrCP: ['$placedAt', 0, width] }, n: { $sum: 1 } } },
          { $sort: { _id: 1 } },
        ])
        .toArray(),
      this.contactsCol
        .aggregate<{ _id: { t: string; state: string }; n: number }>([
          { $match: { broadcastId, final: true, finalAt: { $type: 'string' } } },
          { $group: { _id: { t: { $substrCP: ['$finalAt', 0, width] }, state: '$state' }, n: { $sum: 1 } } },
          { $sort: { '_id.t': 1, '_id.state': 1 } },
        ])
        .toArray(),
    ]);
    return {
      bucket,
      calls: calls.map((r) => ({ t: r._id, n: r.n })),
      outcomes: outcomes.map((r) => ({ t: r._id.t, state: r._id.state, n: r.n })),
    };
  }

  /** Contacts of a broadcast by state (`state=a,b`, `notState=acknowledged`), in id order. */
  async contacts(
    broadcastId: string,
    options: { state?: string | undefined; notState?: string | undefined; cursor?: string | undefined; limit: number },
  ): Promise<Page<ContactView>> {
    const filter: Filter = { broadcastId, ...stateFilter(options.state, options.notState) };
    if (options.cursor) filter._id = { $gt: decodeCursor(options.cursor, isString) };
    const docs = await this.contactsCol.find(filter, { sort: { _id: 1 }, limit: options.limit + 1 }).toArray();
    const page = docs.slice(0, options.limit);
    const last = page[page.length - 1];
    return { items: page.map(viewContact), nextCursor: docs.length > options.limit && last ? encodeCursor(last._id) : null };
  }

  /** Every attempt made to one contact of one broadcast. */
  async attemptsOf(broadcastId: string, contactId: string): Promise<AttemptView[]> {
    const docs = await this.attemptsCol.find({ broadcastId, contactId }, { sort: { attempt: 1 } }).toArray();
    return docs.map(viewAttempt);
  }

  /** Every attempt to one number, across broadcasts, newest first. */
  async attemptsByNumber(number: string, limit: number): Promise<AttemptView[]> {
    const docs = await this.attemptsCol.find({ number }, { sort: { placedAt: -1 }, limit }).toArray();
    return docs.map(viewAttempt);
  }

  /** All contacts of a broadcast, streamed in id order. */
  async *allContacts(broadcastId: string): AsyncIterable<ContactView> {
    for await (const doc of this.contactsCol.find({ broadcastId }, { sort: { _id: 1 } })) yield viewContact(doc);
  }

  /** All attempts of a broadcast, streamed in id order. */
  async *allAttempts(broadcastId: string): AsyncIterable<AttemptView> {
    for await (const doc of this.attemptsCol.find({ broadcastId }, { sort: { contactId: 1, attempt: 1 } })) yield viewAttempt(doc);
  }
}
