import type { KV } from '@nats-io/kv';

/** Paces call starts: `acquire` resolves when the caller may start one call. */
export interface Pacer {
  /** Reserve the next slot and wait for it; resolves with the granted time (epoch ms). */
  acquire(signal?: AbortSignal, options?: AcquireOptions): Promise<number>;
  /** No grant before `untilMs` (epoch ms), on every replica sharing this pacer. */
  slowDown(untilMs: number): Promise<void>;
  /** A 429 was seen: hold all grants for one penalty period from now. */
  penalise(): Promise<void>;
  /**
   * The request started with `grant` has been answered (or failed): it reached the provider no
   * later than now. The rolling-window guard uses this bound; without the guard it does nothing.
   */
  answered(grant: number): void;
  /** Spacing between grants in ms (1000 / rate × safety). */
  readonly intervalMs: number;
}

export interface PacerOptions {
  ratePerSecond: number;
  /**
   * Also hold each grant until the ⌊rate⌋-th latest request before it was answered a full second
   * (plus `windowMarginMs`) earlier. The provider counts requests when they arrive, which is
   * between our start and its answer: so however late a start ran (a busy event loop, a slow hop),
   * no rolling second at the provider can hold more than ⌊rate⌋ of them. On by default; never above
   * 100 calls per second (its history would make each state write large). It costs no extra round
   * trip in steady state: answers ride on the next grant's write.
   */
  rollingWindowGuard?: boolean;
  /** Room added to the rolling second for clock granularity and timers firing early (ms, default 5). */
  windowMarginMs?: number;
  /**
   * How long the guard assumes an unanswered request may still reach the provider (ms, default 1000).
   * A live sender answers every grant by its request timeout, so set this to that timeout: only a
   * sender that died mid-request then holds the window for that long. A provider that queues requests
   * before counting them (an overloaded simulator) is then never sent more than the rate.
   */
  outstandingBoundMs?: number;
  /** Spacing multiplier so network jitter cannot push a rolling second above the rate (≈1.02). */
  safetyFactor?: number;
  /** How long `penalise` holds grants; one rolling window by default. */
  penaltyMs?: number;
  clock?: () => number;
  /** Injectable wait; the default is a timer that honours the abort signal. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The pacer was aborted or could not update its shared state. */
export class PacerError extends Error {
  override readonly name = 'PacerError';
  constructor(
    readonly code: 'aborted' | 'conflict' | 'state_unavailable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new PacerError('aborted', 'pacer wait aborted'));
    if (ms <= 0) return resolve();
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new PacerError('aborted', 'pacer wait aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Above this rate the guard's history would make every shared-state write large: spacing alone then. */
const GUARD_MAX_RATE = 100;

function common(options: PacerOptions) {
  if (!(options.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be positive');
  const safety = options.safetyFactor ?? 1.02;
  const windowLimit = Math.floor(options.ratePerSecond);
  return {
    intervalMs: (1000 / options.ratePerSecond) * safety,
    penaltyMs: options.penaltyMs ?? 1000,
    clock: options.clock ?? Date.now,
    sleep: options.sleep ?? defaultSleep,
    window: {
      on: (options.rollingWindowGuard ?? true) && options.ratePerSecond <= GUARD_MAX_RATE && windowLimit >= 1,
      limit: windowLimit,
      marginMs: options.windowMarginMs ?? 5,
      boundMs: options.outstandingBoundMs ?? DEFAULT_OUTSTANDING_BOUND_MS,
    },
  };
}

/** One recent grant: [grant, answered] in epoch ms, `answered` 0 while its request is outstanding. */
export type RecentGrant = [number, number];

/**
 * By default, a request still unanswered this long after its grant is assumed to have reached the
 * provider by then (it hangs on the provider's side, or its sender died); until then it may arrive
 * at any time. See `PacerOptions.outstandingBoundMs`.
 */
const DEFAULT_OUTSTANDING_BOUND_MS = 1000;

/** How often a grant blocked by outstanding requests looks for their answers (ms). */
const OUTSTANDING_POLL_MS = 5;

const arrivalBound = ([grant, answered]: RecentGrant, now: number, boundMs: number): number =>
  answered || (now < grant + boundMs ? Infinity : grant + boundMs);

/**
 * The rolling-window guard, shared by the local and the shared pacer. `recent` holds the latest
 * grants in grant order. A request reached the provider no later than its answer; one still
 * outstanding may arrive at any moment. A new request starts no earlier than its grant, so a grant
 * at or after the result keeps every provider second at ⌊rate⌋ or fewer. Infinity: ⌊rate⌋ requests
 * are outstanding, wait for an answer.
 */
export function windowEarliest(recent: readonly RecentGrant[], limit: number, marginMs: number, now: number, boundMs = DEFAULT_OUTSTANDING_BOUND_MS): number {
  if (recent.length < limit) return 0;
  const latest = recent.map((entry) => arrivalBound(entry, now, boundMs)).sort((a, b) => b - a);
  return latest[limit - 1]! + 1000 + marginMs;
}

/** For appending a grant when the answers are already recorded. */
const NO_ANSWERS: ReadonlyMap<number, number> = new Map();

/** Record answers on the grants they belong to, append `grant`, and keep what the guard still needs. */
export function recordGrants(
  recent: readonly RecentGrant[],
  answers: ReadonlyMap<number, number>,
  grant: number | undefined,
  limit: number,
  now: number,
  boundMs = DEFAULT_OUTSTANDING_BOUND_MS,
): RecentGrant[] {
  const next: RecentGrant[] = recent.map(([g, answered]) => [g, answered || answers.get(g) || 0]);
  if (grant !== undefined) next.push([grant, 0]);
  // Entries answered more than two seconds ago can no longer share a second with a new request.
  const kept = next.filter((entry) => arrivalBound(entry, now, boundMs) > now - 2000);
  return kept.slice(-2 * limit);
}

/** GCRA with zero burst tolerance for one process: grants are spaced by `intervalMs`. */
export function createLocalPacer(options: PacerOptions): Pacer {
  const { intervalMs, penaltyMs, clock, sleep, window } = common(options);
  let tat = 0;
  let recent: RecentGrant[] = [];
  return {
    intervalMs,
    async acquire(signal) {
      if (signal?.aborted) throw new PacerError('aborted', 'pacer wait aborted');
      let now = clock();
      while (window.on && windowEarliest(recent, window.limit, window.marginMs, now, window.boundMs) === Infinity) {
        await sleep(OUTSTANDING_POLL_MS, signal);
        now = clock();
      }
      let grant = Math.max(now, tat);
      if (window.on) {
        grant = Math.max(grant, windowEarliest(recent, window.limit, window.marginMs, now, window.boundMs));
        recent = recordGrants(recent, NO_ANSWERS, grant, window.limit, now, window.boundMs);
      }
      tat = grant + intervalMs;
      await sleep(grant - clock(), signal);
      return grant;
    },
    answered(grant) {
      if (!window.on) return;
      const at = clock();
      recent = recent.map(([g, answered]) => [g, g === grant && !answered ? at : answered]);
    },
    async slowDown(untilMs) {
      tat = Math.max(tat, untilMs);
    },
    async penalise() {
      tat = Math.max(tat, clock() + penaltyMs);
    },
  };
}

export interface SharedPacerOptions extends PacerOptions {
  /** The `pacer` KV bucket. */
  kv: KV;
  /** One key per account: every replica with the same key shares the rate. */
  key: string;
  /** Give up after this many compare-and-set conflicts in a row. */
  maxConflicts?: number;
  /** Reserve a slot only when the shared schedule is this close to now (ms, default max(2 intervals, 200)). */
  horizonMs?: number;
  /** After a critical grant, normal grants on every replica wait this long (ms, default max(10 intervals, 500)). */
  criticalHoldMs?: number;
}

/** Options of one `acquire`: critical callers are granted before normal ones waiting in this instance. */
export interface AcquireOptions {
  priority?: 'critical' | 'normal';
}

interface SharedState {
  /** Theoretical arrival time: the earliest next grant (epoch ms). */
  tat: number;
  /** Latest penalty end, kept for operators. */
  penaltyUntil?: number;
  /** Until then normal grants wait: a critical broadcast is being dialled somewhere in the account. */
  criticalUntil?: number;
  /** Recent grants and when their requests were answered, for the rolling-window guard. */
  recent?: RecentGrant[];
}

interface Waiter {
  priority: 'critical' | 'normal';
  resolve: (grant: number) => void;
  reject: (error: Error) => void;
  signal?: AbortSignal | undefined;
  onAbort?: () => void;
}

/** A grant the rolling-window guard cannot place yet. */
const BLOCKED: unique symbol = Symbol('blocked');

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * GCRA whose theoretical arrival time lives in NATS KV and advances by compare-and-set, so every
 * replica sharing the key together stays under the rate. Waiters of one instance queue locally,
 * critical first, and a slot is reserved only when the shared schedule is within `horizonMs` of
 * now, so the backlog of reserved slots (which no later critical call can overtake) stays short.
 */
export function createSharedPacer(options: SharedPacerOptions): Pacer {
  const { intervalMs, penaltyMs, clock, sleep, window } = common(options);
  const { kv, key } = options;
  const maxConflicts = options.maxConflicts ?? 1000;
  // Far enough ahead that a slow CAS under load does not make grants late, short enough for priority.
  const horizonMs = options.horizonMs ?? Math.max(2 * intervalMs, 200);
  const criticalHoldMs = options.criticalHoldMs ?? Math.max(10 * intervalMs, 500);
  // Slots one CAS may reserve: as many as fit in the horizon.
  const maxBlock = Math.max(1, Math.floor(horizonMs / intervalMs));
  let cached: { state: SharedState; revision: number } | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  const waiters: Waiter[] = [];
  let pumping = false;
  /** Answers not yet written to the shared state: grant → answered (epoch ms). */
  let answers = new Map<number, number>();
  let flushTimer: ReturnType<typeof setTimeout> | undefined;

  const read = async (): Promise<{ state: SharedState; revision: number } | undefined> => {
    const entry = await kv.get(key);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    try {
      const parsed = JSON.parse(decoder.decode(entry.value)) as Partial<SharedState>;
      const state: SharedState = { tat: typeof parsed.tat === 'number' ? parsed.tat : 0 };
      if (typeof parsed.penaltyUntil === 'number') state.penaltyUntil = parsed.penaltyUntil;
      if (typeof parsed.criticalUntil === 'number') state.criticalUntil = parsed.criticalUntil;
      if (Array.isArray(parsed.recent)) {
        state.recent = parsed.recent.filter((r): r is RecentGrant => Array.isArray(r) && typeof r[0] === 'number' && typeof r[1] === 'number');
      }
      return { state, revision: entry.revision };
    } catch {
      // Unreadable state is overwritten by the next CAS: pacing restarts from now.
      return { state: { tat: 0 }, revision: entry.revision };
    }
  };

  /** Apply `change` to the shared state with CAS, retrying on conflict; `next: undefined` writes nothing. */
  const mutate = async <T>(change: (state: SharedState) => { next: SharedState | undefined; result: T }, signal?: AbortSignal): Promise<T> => {
    let conflicts = 0;
    let fresh = false;
    for (;;) {
      if (signal?.aborted) throw new PacerError('aborted', 'pacer wait aborted');
      const current = cached;
      const { next, result } = change(current?.state ?? { tat: 0 });
      if (next === undefined) return result;
      const data = encoder.encode(JSON.stringify(next));
      try {
        const revision = current ? await kv.update(key, data, current.revision) : await kv.create(key, data);
        cached = { state: next, revision };
        return result;
      } catch (cause) {
        conflicts += 1;
        if (conflicts > maxConflicts) throw new PacerError('conflict', `pacer state ${key} kept changing`, { cause });
        try {
          cached = await read();
        } catch (readError) {
          if (fresh) throw new PacerError('state_unavailable', `pacer state ${key} unavailable`, { cause: readError });
          fresh = true;
        }
      }
    }
  };

  const serialised = <T>(task: () => Promise<T>): Promise<T> => {
    const run = chain.then(task, task);
    chain = run.catch(() => undefined);
    return run;
  };

  const slowDown = async (untilMs: number): Promise<void> => {
    await serialised(() =>
      mutate((state) => ({
        next: { ...state, tat: Math.max(state.tat, untilMs), penaltyUntil: Math.max(state.penaltyUntil ?? 0, untilMs) },
        result: undefined,
      })),
    );
  };

  /** Reserve slots for the head of the local queue, one at a time, never far ahead of now. */
  const pump = async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    try {
      while (waiters.length > 0) {
        // Refill when the reserved schedule runs less than half the horizon ahead, up to the horizon.
        const ahead = (cached?.state.tat ?? 0) - clock() - horizonMs / 2;
        if (ahead > 0) {
          // Not yet: a critical waiter arriving meanwhile will be at the head when we look again.
          await sleep(ahead);
          continue;
        }
        const head = waiters[0]!;
        const criticalUntil = cached?.state.criticalUntil ?? 0;
        if (head.priority === 'normal' && criticalUntil > clock()) {
          // A critical broadcast holds the account: wait, then look at the shared state again.
          await sleep(Math.min(criticalUntil - clock(), 100));
          await serialised(async () => {
            cached = (await read()) ?? cached;
          }).catch(() => undefined);
          continue;
        }
        // One CAS reserves slots for every waiter of the head's priority that fits in the horizon:
        // a replica dialling alone (or fast) pays one round trip per block, not one per call.
        let size = 1;
        while (size < waiters.length && size < maxBlock && waiters[size]!.priority === head.priority) size += 1;
        const block = waiters.splice(0, size);
        for (const waiter of block) if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
        const putBack = (rest: Waiter[], atHead: boolean): void => {
          for (const waiter of rest) if (waiter.onAbort) waiter.signal?.addEventListener('abort', waiter.onAbort, { once: true });
          // At the head, or behind any critical waiter that arrived meanwhile, ahead of the other normal ones.
          const at = atHead ? 0 : waiters.findIndex((w) => w.priority === 'normal');
          waiters.splice(at < 0 ? waiters.length : at, 0, ...rest);
        };
        const batch = takeAnswers();
        let grants: number[] | typeof BLOCKED | undefined;
        try {
          grants = await serialised(() =>
            mutate<number[] | typeof BLOCKED | undefined>((state) => {
              const now = clock();
              // Seen only after a CAS conflict refreshed the state: yield to the critical broadcast.
              if (head.priority === 'normal' && (state.criticalUntil ?? 0) > now) return { next: undefined, result: undefined };
              let recent = window.on ? recordGrants(state.recent ?? [], batch, undefined, window.limit, now, window.boundMs) : [];
              const out: number[] = [];
              let g = Math.max(now, state.tat);
              while (out.length < block.length && (out.length === 0 || g <= now + horizonMs)) {
                if (window.on) {
                  g = Math.max(g, windowEarliest(recent, window.limit, window.marginMs, now, window.boundMs));
                  // ⌊rate⌋ requests still unanswered (here or on another replica): look again shortly.
                  if (g === Infinity) break;
                  recent = recordGrants(recent, NO_ANSWERS, g, window.limit, now, window.boundMs); // answers merged above
                }
                out.push(g);
                g += intervalMs;
              }
              if (out.length === 0) return { next: undefined, result: BLOCKED };
              const next: SharedState = { ...state, tat: out.at(-1)! + intervalMs };
              if (window.on) next.recent = recent;
              if (head.priority === 'critical') next.criticalUntil = Math.max(state.criticalUntil ?? 0, out.at(-1)! + criticalHoldMs);
              return { next, result: out };
            }),
          );
        } catch (error) {
          returnAnswers(batch);
          for (const waiter of block) waiter.reject(error as Error);
          continue;
        }
        if (!Array.isArray(grants)) {
          returnAnswers(batch);
          putBack(block, grants === BLOCKED);
          if (grants === BLOCKED) {
            await flushAnswers();
            await sleep(OUTSTANDING_POLL_MS);
            await serialised(async () => {
              cached = (await read()) ?? cached;
            }).catch(() => undefined);
          }
          continue;
        }
        putBack(block.slice(grants.length), true);
        grants.forEach((grant, i) => block[i]!.resolve(grant));
      }
    } finally {
      pumping = false;
    }
  };

  const reserve = (signal: AbortSignal | undefined, priority: 'critical' | 'normal'): Promise<number> =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new PacerError('aborted', 'pacer wait aborted'));
      const waiter: Waiter = { priority, resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const index = waiters.indexOf(waiter);
          if (index >= 0) waiters.splice(index, 1);
          reject(new PacerError('aborted', 'pacer wait aborted'));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      // Critical waiters go after the other critical ones, ahead of every normal one.
      const at = priority === 'critical' ? waiters.findIndex((w) => w.priority === 'normal') : -1;
      if (at < 0) waiters.push(waiter);
      else waiters.splice(at, 0, waiter);
      void pump();
    });

  const takeAnswers = (): Map<number, number> => {
    const batch = answers;
    answers = new Map();
    return batch;
  };
  const returnAnswers = (batch: Map<number, number>): void => {
    for (const [grant, at] of batch) if (!answers.has(grant)) answers.set(grant, at);
  };

  /** Write answers no grant has carried yet: they must be in the shared state well within a second. */
  const flushAnswers = async (): Promise<void> => {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    if (answers.size === 0) return;
    const batch = takeAnswers();
    try {
      await serialised(() =>
        mutate((state) => ({ next: { ...state, recent: recordGrants(state.recent ?? [], batch, undefined, window.limit, clock(), window.boundMs) }, result: undefined })),
      );
    } catch {
      // The state is unreachable: the guard then counts these requests as arriving now (stricter).
    }
  };

  return {
    intervalMs,
    async acquire(signal, opts) {
      const grant = await reserve(signal, opts?.priority ?? 'normal');
      await sleep(grant - clock(), signal);
      return grant;
    },
    answered(grant) {
      if (!window.on) return;
      answers.set(grant, clock());
      // Usually the next grant carries it; a quiet replica writes it itself shortly.
      flushTimer ??= setTimeout(() => void flushAnswers(), OUTSTANDING_POLL_MS);
      flushTimer.unref?.();
    },
    slowDown,
    penalise: () => slowDown(clock() + penaltyMs),
  };
}
