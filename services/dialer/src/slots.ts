import type { KV } from '@clarion/nats';
import { GateClosedError } from './gate.js';

// Call slots shared by every dialer replica: the account's ACCOUNT_MAX_CONCURRENT and a broadcast's
// `pacing.maxConcurrent`, as a queue semaphore on the `call-slots` KV bucket.
//
// - One key per attempt (`<bid>.<cid>.<attempt>`, as in the ledger). The revision the key was first
//   written at (the bucket's stream sequence: one total order for all replicas) is its place in the
//   queue, `q`. A rewrite that keeps the place carries it in the value.
// - Every replica mirrors the bucket with a watch. A key is granted once the mirror has seen its
//   latest write and fewer than N live keys have a smaller place (and fewer than the broadcast's cap
//   of the same broadcast). New keys always get a larger place and rewrites keep theirs, so the count
//   ahead of a key only ever falls: a key granted on one replica's view stays within the first N on
//   every later view, and however the views lag, no more than N keys are granted at once.
// - Keys ahead are counted whether granted or still waiting. Skipping waiters (as the local gate
//   does for a broadcast at its cap) is not safe here: a waiter ahead that became eligible would push
//   a key already granted elsewhere out of the first N. So waiters do not queue early: a normal job
//   writes its key only when its mirror shows room, and the queue holds few waiters besides the
//   critical ones and those of simultaneous entries.
// - Critical first: a critical waiter enters at once, room or not (its broadcast's cap allowing). A
//   critical key waiting for the account means no room, so normal waiters stay out and every freed
//   place goes to the critical keys first, whichever replica holds them. Normal waiters enter in
//   arrival order.
// - Release = delete the key, by whichever replica sees the attempt end. A key not written for the
//   slot timeout counts as released on every replica (nats-server 2.9 ignores per-key TTLs; the
//   bucket's max_age, set to the same timeout, removes it from the server). So the timeout counts
//   from the grant, a key is rewritten with its place when granted after waiting, and every half
//   timeout while it waits. A key that did grow too old is written again at the back of the queue.

/** What a slot key holds. The broadcast's cap travels with the key so every replica counts alike. */
interface SlotValue {
  /** broadcast id */
  b: string;
  /** priority of the broadcast */
  p: 'critical' | 'normal';
  /** the broadcast's own cap, if any */
  cap?: number;
  /** when the key was written (epoch ms) */
  at: number;
  /** place in the queue when rewritten; absent on the first write, whose revision is the place */
  q?: number;
}

interface MirroredSlot extends SlotValue {
  revision: number;
  q: number;
}

/** What a job asks for: a place under the account cap and its broadcast's. */
export interface SlotRequest {
  broadcastId: string;
  priority: 'critical' | 'normal';
  /** The broadcast's `pacing.maxConcurrent`; none means only the account cap applies. */
  cap?: number | undefined;
}

interface Waiter {
  key: string;
  request: SlotRequest;
  seq: number;
  /** local: no key yet; entering: being written; queued: written at `revision` (or later). */
  state: 'local' | 'entering' | 'queued';
  revision: number;
  /** Left while entering: the key is deleted once the write returns. */
  abandoned: boolean;
  resolve: () => void;
  reject: (error: Error) => void;
  signal?: AbortSignal | undefined;
  onAbort: () => void;
}

/** The fields of a bucket watch entry the mirror reads. */
interface WatchEntry {
  key: string;
  revision: number;
  operation: string;
  value: Uint8Array;
  created: Date;
}

export interface CallSlotsOptions {
  kv: KV;
  /** ACCOUNT_MAX_CONCURRENT: keys granted at once across all replicas. */
  accountCap: number;
  /** CALL_SLOT_TIMEOUT_MS: a key not written for this long counts as released. */
  timeoutMs: number;
  clock?: () => number;
  /** The bucket watch failed (it is reopened) or a background write failed. */
  onError?: (error: unknown, context: string) => void;
}

/** A key granted after waiting at least this long is rewritten, so its timeout counts from the grant. */
const REWRITE_AFTER_WAIT_MS = 1000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The account-wide and per-broadcast call slots as this replica sees them; see the notes above. */
export class CallSlots {
  private readonly kv: KV;
  private readonly accountCap: number;
  private readonly timeoutMs: number;
  private readonly clock: () => number;
  private readonly onError: (error: unknown, context: string) => void;
  /**
   * Live keys in queue order (`q`); `unsorted` when a key arrived with an earlier place than the
   * last one (a rewritten key first seen by a new watch). Keys past the slot timeout are swept out.
   */
  private live = new Map<string, MirroredSlot>();
  /** Live keys per broadcast. */
  private readonly liveOf = new Map<string, number>();
  private unsorted = false;
  private tailQ = 0;
  private lastRevision = 0;
  /** In arrival order (a Set keeps insertion order): normal waiters enter in this order. */
  private readonly waiters = new Set<Waiter>();
  /** Keys granted to this replica's waiters, with the revision they were granted at. */
  private readonly mine = new Map<string, number>();
  /** Rewrites in flight, by key, and keys to rewrite once more when theirs ends. */
  private readonly rewrites = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private seq = 0;
  private pumpScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private watching: { stop(): void } | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private watchUp = false;

  constructor(options: CallSlotsOptions) {
    this.kv = options.kv;
    this.accountCap = options.accountCap;
    this.timeoutMs = options.timeoutMs;
    this.clock = options.clock ?? Date.now;
    this.onError = options.onError ?? (() => undefined);
  }

  /** Start mirroring the bucket (resolves once the watch is open). */
  async start(): Promise<void> {
    const opened = await this.openWatch();
    this.running = this.follow(opened);
    // Expired keys leave the counts within a tenth of the timeout (later is the safe side).
    this.sweeper = setInterval(() => this.sweep(), Math.min(5000, Math.max(100, this.timeoutMs / 10)));
    this.sweeper.unref();
  }

  /** Stop the watch and reject every waiter (keys still waiting are left to the slot timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.sweeper);
    this.watching?.stop();
    for (const waiter of [...this.waiters]) this.settle(waiter, new GateClosedError('closed'));
    await Promise.allSettled([...this.rewrites.values()]);
    await this.running;
  }

  /** The watch is running (for readiness). */
  isReady(): boolean {
    return this.watchUp && !this.stopped;
  }

  /** Slots granted to this replica's attempts that no replica has released yet. */
  get held(): number {
    let count = 0;
    for (const key of this.mine.keys()) if (this.live.has(key)) count += 1;
    return count;
  }

  /** The mirror shows a live key for this attempt (a slot held or a place in the queue). */
  holds(key: string): boolean {
    const slot = this.live.get(key);
    return slot !== undefined && !this.expired(slot, this.clock());
  }

  /**
   * Wait for a slot for attempt `key`. An existing key of the attempt (a redelivered job, a call whose
   * create stayed ambiguous) is taken over with its place. Rejects with GateClosedError when `signal`
   * aborts, after deleting a key not yet granted.
   */
  acquire(key: string, request: SlotRequest, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stopped) return reject(new GateClosedError('closed'));
      if (signal?.aborted) return reject(new GateClosedError('aborted'));
      const waiter: Waiter = {
        key,
        request,
        seq: (this.seq += 1),
        state: 'local',
        revision: 0,
        abandoned: false,
        resolve,
        reject,
        signal,
        onAbort: () => this.abandon(waiter),
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.add(waiter);
      this.pump();
    });
  }

  /** Give the attempt's slot back (any replica may): deletes the key when the mirror has it. */
  async release(key: string): Promise<void> {
    this.mine.delete(key);
    if (!this.live.has(key)) return;
    await this.kv.delete(key);
  }

  // ---- mirror ------------------------------------------------------------------------------

  private async openWatch(): Promise<AsyncIterable<WatchEntry>> {
    const iterator = await this.kv.watch();
    this.watching = iterator;
    this.watchUp = true;
    return iterator;
  }

  private async follow(iterator: AsyncIterable<WatchEntry>): Promise<void> {
    for (;;) {
      try {
        for await (const entry of iterator) this.apply(entry);
      } catch (error) {
        if (!this.stopped) this.onError(error, 'call-slots watch failed; reopening');
      }
      this.watchUp = false;
      if (this.stopped) return;
      // Start over from the bucket's current keys; waiters wait until the new view reaches their key.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (this.stopped) return;
      this.live.clear();
      this.liveOf.clear();
      this.unsorted = false;
      this.tailQ = 0;
      this.lastRevision = 0;
      try {
        iterator = await this.openWatch();
      } catch (error) {
        this.onError(error, 'call-slots watch could not be reopened');
        iterator = (async function* () {})();
      }
    }
  }

  private apply(entry: WatchEntry): void {
    this.lastRevision = Math.max(this.lastRevision, entry.revision);
    if (entry.operation !== 'PUT') {
      this.forget(entry.key);
      this.mine.delete(entry.key);
    } else {
      const value = parseValue(entry.key, entry.value, entry.created);
      const slot: MirroredSlot = { ...value, revision: entry.revision, q: value.q ?? entry.revision };
      const known = this.live.get(entry.key);
      if (known?.q === slot.q && known.b === slot.b) {
        this.live.set(entry.key, slot); // rewritten in place: Map.set keeps the position
      } else {
        this.forget(entry.key);
        if (this.expired(slot, this.clock())) return this.schedulePump(); // a leftover the bucket has not aged out yet
        this.live.set(entry.key, slot);
        this.liveOf.set(slot.b, (this.liveOf.get(slot.b) ?? 0) + 1);
        if (slot.q < this.tailQ) this.unsorted = true;
        this.tailQ = Math.max(this.tailQ, slot.q);
      }
    }
    this.schedulePump();
  }

  /** Drop a key from the mirror and the counts. */
  private forget(key: string): void {
    const slot = this.live.get(key);
    if (!slot) return;
    this.live.delete(key);
    const left = (this.liveOf.get(slot.b) ?? 1) - 1;
    if (left > 0) this.liveOf.set(slot.b, left);
    else this.liveOf.delete(slot.b);
  }

  /** Keys past the slot timeout count as released; forget granted keys the mirror no longer has. */
  private sweep(): void {
    const now = this.clock();
    let changed = false;
    for (const [key, slot] of this.live) {
      if (!this.expired(slot, now)) continue;
      this.forget(key);
      changed = true;
    }
    for (const [key, revision] of this.mine) if (!this.live.has(key) && revision <= this.lastRevision) this.mine.delete(key);
    if (changed) this.schedulePump();
  }

  private expired(slot: SlotValue, now: number): boolean {
    return now - slot.at >= this.timeoutMs;
  }

  // ---- waiting -----------------------------------------------------------------------------

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Grant what the mirror allows, let waiters enter the queue, keep waiting keys fresh. */
  private pump(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiters.size === 0) return;
    const now = this.clock();

    // Grants. Below both caps no key can have N ahead of it: no need to walk the queue.
    const undecided: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.state !== 'queued' || waiter.revision > this.lastRevision) continue;
      const slot = this.live.get(waiter.key);
      if (!slot) {
        waiter.state = 'local'; // released by someone, or timed out: enter again
        continue;
      }
      waiter.revision = slot.revision; // perhaps rewritten by another replica that took the attempt over too
      if (this.live.size <= this.accountCap && (this.liveOf.get(slot.b) ?? 0) <= (slot.cap ?? Number.POSITIVE_INFINITY)) this.grant(waiter, slot, now);
      else undecided.push(waiter);
    }
    if (undecided.length > 0) this.walk(undecided, now);

    // Waiting keys are rewritten in place every half timeout, so they never time out while waiting.
    let wakeAt = Number.POSITIVE_INFINITY;
    for (const waiter of undecided) {
      const slot = this.live.get(waiter.key);
      if (!slot || !this.waiters.has(waiter)) continue;
      const staleAt = slot.at + this.timeoutMs / 2;
      if (now >= staleAt) this.rewrite(waiter.key, slot);
      else wakeAt = Math.min(wakeAt, staleAt);
    }

    // Entries: keys being written or not yet mirrored count as taken.
    let taken = this.live.size;
    const takenOf = new Map<string, number>();
    const takenBy = (broadcastId: string) => takenOf.get(broadcastId) ?? this.liveOf.get(broadcastId) ?? 0;
    for (const waiter of this.waiters) {
      if (waiter.state === 'entering' || (waiter.state === 'queued' && waiter.revision > this.lastRevision)) {
        taken += 1;
        takenOf.set(waiter.request.broadcastId, takenBy(waiter.request.broadcastId) + 1);
      }
    }
    for (const priority of ['critical', 'normal'] as const) {
      for (const waiter of this.waiters) {
        if (waiter.state !== 'local' || waiter.request.priority !== priority) continue;
        const { broadcastId, cap } = waiter.request;
        if (takenBy(broadcastId) >= (cap ?? Number.POSITIVE_INFINITY)) continue;
        if (priority === 'normal' && taken >= this.accountCap) break;
        taken += 1;
        takenOf.set(broadcastId, takenBy(broadcastId) + 1);
        void this.enter(waiter);
      }
    }

    if (Number.isFinite(wakeAt)) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, wakeAt - now) + 5);
      this.timer.unref();
    }
  }

  /** At or over a cap: walk the queue, counting the keys ahead of each undecided waiter's key. */
  private walk(undecided: Waiter[], now: number): void {
    if (this.unsorted) {
      this.live = new Map([...this.live].sort(([, a], [, b]) => a.q - b.q));
      this.unsorted = false;
    }
    const byKey = new Map<string, Waiter[]>();
    for (const waiter of undecided) byKey.set(waiter.key, [...(byKey.get(waiter.key) ?? []), waiter]);
    let ahead = 0;
    const aheadOf = new Map<string, number>();
    for (const [key, slot] of this.live) {
      const sameAhead = aheadOf.get(slot.b) ?? 0;
      const waiting = byKey.get(key);
      if (waiting && ahead < this.accountCap && sameAhead < (slot.cap ?? Number.POSITIVE_INFINITY)) {
        for (const waiter of waiting) this.grant(waiter, slot, now);
        byKey.delete(key);
        if (byKey.size === 0) return;
      }
      ahead += 1;
      aheadOf.set(slot.b, sameAhead + 1);
    }
  }

  private grant(waiter: Waiter, slot: MirroredSlot, now: number): void {
    this.mine.set(waiter.key, slot.revision);
    this.settle(waiter);
    // The slot timeout counts from now, not from when the job started waiting.
    if (now - slot.at >= REWRITE_AFTER_WAIT_MS) this.rewrite(waiter.key, slot);
  }

  /** Write the waiter's key (or take over the attempt's existing one) and queue it. */
  private async enter(waiter: Waiter): Promise<void> {
    waiter.state = 'entering';
    let revision: number;
    try {
      revision = await this.writeKey(waiter);
    } catch (error) {
      this.settle(waiter, error as Error);
      return;
    }
    if (waiter.abandoned) {
      await this.kv.delete(waiter.key).catch((error: unknown) => this.onError(error, `could not delete abandoned slot ${waiter.key}`));
      this.settle(waiter, new GateClosedError('aborted'));
      return;
    }
    if (!this.waiters.has(waiter)) return; // rejected meanwhile (stop)
    waiter.state = 'queued';
    waiter.revision = revision;
    this.pump();
  }

  /** Create the key at the back of the queue, or take over a live one of the same attempt; its revision. */
  private async writeKey(waiter: Waiter): Promise<number> {
    const value: SlotValue = { b: waiter.request.broadcastId, p: waiter.request.priority, at: this.clock() };
    if (waiter.request.cap !== undefined) value.cap = waiter.request.cap;
    const data = encoder.encode(JSON.stringify(value));
    for (let round = 0; round < 5; round += 1) {
      try {
        return await this.kv.create(waiter.key, data);
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
      const existing = await this.kv.get(waiter.key);
      if (!existing || existing.operation !== 'PUT') continue; // released meanwhile: create again
      // Still live: keep its place (a slot the attempt's call may be using).
      if (!this.expired(parseValue(waiter.key, existing.value, existing.created), this.clock() + 1000)) return existing.revision;
      // Counted as released everywhere: never bring it back at its old place.
      try {
        return await this.kv.update(waiter.key, data, existing.revision);
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    throw new Error(`call slot ${waiter.key} kept changing`);
  }

  /**
   * Write a live key again with its place and a new time. Compare-and-set, re-read on a conflict: a
   * released key stays released, one written elsewhere at another place is left alone.
   */
  private rewrite(key: string, slot: MirroredSlot): void {
    const running = this.rewrites.get(key);
    if (running) {
      // One in flight may have read the time before this request: write once more after it.
      this.again.add(key);
      return;
    }
    const task = this.writeInPlace(key, slot)
      .catch((error: unknown) => this.onError(error, `could not rewrite slot ${key}`))
      .finally(() => {
        this.rewrites.delete(key);
        if (this.again.delete(key) && !this.stopped) {
          const current = this.live.get(key);
          if (current?.q === slot.q) this.rewrite(key, current);
        }
      });
    this.rewrites.set(key, task);
  }

  private async writeInPlace(key: string, slot: MirroredSlot): Promise<void> {
    let revision = slot.revision;
    for (let round = 0; round < 5; round += 1) {
      const value: SlotValue = { b: slot.b, p: slot.p, at: this.clock(), q: slot.q };
      if (slot.cap !== undefined) value.cap = slot.cap;
      try {
        await this.kv.update(key, encoder.encode(JSON.stringify(value)), revision);
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
      const entry = await this.kv.get(key);
      if (!entry || entry.operation !== 'PUT') return;
      const current = parseValue(key, entry.value, entry.created);
      if ((current.q ?? entry.revision) !== slot.q || this.expired(current, this.clock())) return;
      revision = entry.revision;
    }
  }

  private abandon(waiter: Waiter): void {
    if (!this.waiters.has(waiter)) return;
    if (waiter.state === 'entering') {
      waiter.abandoned = true;
      return;
    }
    if (waiter.state === 'local') {
      this.settle(waiter, new GateClosedError('aborted'));
      return;
    }
    // Queued: give the place up before telling the job.
    this.waiters.delete(waiter);
    void this.kv
      .delete(waiter.key)
      .catch((error: unknown) => this.onError(error, `could not delete abandoned slot ${waiter.key}`))
      .finally(() => this.settle(waiter, new GateClosedError('aborted')));
  }

  /** Resolve (no error) or reject a waiter and forget it. */
  private settle(waiter: Waiter, error?: Error): void {
    this.waiters.delete(waiter);
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    if (error) waiter.reject(error);
    else waiter.resolve();
  }
}

/** A key's value; an unreadable one still counts (as a normal slot of the key's broadcast, written when stored). */
function parseValue(key: string, data: Uint8Array, created: Date): SlotValue {
  try {
    const value = JSON.parse(decoder.decode(data)) as Partial<SlotValue>;
    if (typeof value.b === 'string' && typeof value.at === 'number' && (value.p === 'critical' || value.p === 'normal')) {
      const slot: SlotValue = { b: value.b, p: value.p, at: value.at };
      if (typeof value.cap === 'number' && value.cap > 0) slot.cap = value.cap;
      if (typeof value.q === 'number' && value.q > 0) slot.q = value.q;
      return slot;
    }
  } catch {
    // fall through
  }
  return { b: key.split('.')[0] ?? key, p: 'normal', at: created.getTime() };
}

function isConflict(error: unknown): boolean {
  const text = String((error as { message?: string })?.message ?? error);
  return /wrong last sequence|key exists|10071|10164/i.test(text);
}
