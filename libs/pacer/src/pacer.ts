import type { KV } from '@nats-io/kv';

/** Paces call starts: `acquire` resolves when the caller may start one call. */
export interface Pacer {
  /** Reserve the next slot and wait for it; resolves with the granted time (epoch ms). */
  acquire(signal?: AbortSignal, options?: AcquireOptions): Promise<number>;
  /** No grant before `untilMs` (epoch ms), on every replica sharing this pacer. */
  slowDown(untilMs: number): Promise<void>;
  /** A 429 was seen: hold all grants for one penalty period from now. */
  penalise(): Promise<void>;
  /** Spacing between grants in ms (1000 / rate × safety). */
  readonly intervalMs: number;
}

export interface PacerOptions {
  ratePerSecond: number;
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

function common(options: PacerOptions) {
  if (!(options.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be positive');
  const safety = options.safetyFactor ?? 1.02;
  return {
    intervalMs: (1000 / options.ratePerSecond) * safety,
    penaltyMs: options.penaltyMs ?? 1000,
    clock: options.clock ?? Date.now,
    sleep: options.sleep ?? defaultSleep,
  };
}

/** GCRA with zero burst tolerance for one process: grants are spaced by `intervalMs`. */
export function createLocalPacer(options: PacerOptions): Pacer {
  const { intervalMs, penaltyMs, clock, sleep } = common(options);
  let tat = 0;
  return {
    intervalMs,
    async acquire(signal) {
      if (signal?.aborted) throw new PacerError('aborted', 'pacer wait aborted');
      const grant = Math.max(clock(), tat);
      tat = grant + intervalMs;
      await sleep(grant - clock(), signal);
      return grant;
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
  /**
   * Also keep the last ⌊rate⌋ actual start times in the shared state and hold a start until the
   * rolling window (plus `windowMarginMs`) has room: a start that ran late (a busy event loop) then
   * cannot crowd a later on-time one into the same provider second. Off by default: it costs one more
   * CAS per start, and on a heavily loaded host it did not remove 429s (see the dialer report).
   */
  rollingWindowGuard?: boolean;
  /** Extra room on the rolling second for the hop to the provider (ms, default 30). */
  windowMarginMs?: number;
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
  /** The last ⌊rate⌋ actual starts (epoch ms, ascending), for the rolling-window guard. */
  sent?: number[];
}

interface Waiter {
  priority: 'critical' | 'normal';
  resolve: (grant: number) => void;
  reject: (error: Error) => void;
  signal?: AbortSignal | undefined;
  onAbort?: () => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * GCRA whose theoretical arrival time lives in NATS KV and advances by compare-and-set, so every
 * replica sharing the key together stays under the rate. Waiters of one instance queue locally,
 * critical first, and a slot is reserved only when the shared schedule is within `horizonMs` of
 * now, so the backlog of reserved slots (which no later critical call can overtake) stays short.
 */
export function createSharedPacer(options: SharedPacerOptions): Pacer {
  const { intervalMs, penaltyMs, clock, sleep } = common(options);
  const { kv, key } = options;
  const maxConflicts = options.maxConflicts ?? 1000;
  const windowLimit = Math.floor(options.ratePerSecond);
  const guard = (options.rollingWindowGuard ?? false) && windowLimit >= 1;
  const marginMs = options.windowMarginMs ?? 30;
  // Far enough ahead that a slow CAS under load does not make grants late, short enough for priority.
  const horizonMs = options.horizonMs ?? Math.max(2 * intervalMs, 200);
  const criticalHoldMs = options.criticalHoldMs ?? Math.max(10 * intervalMs, 500);
  let cached: { state: SharedState; revision: number } | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  const waiters: Waiter[] = [];
  let pumping = false;

  const read = async (): Promise<{ state: SharedState; revision: number } | undefined> => {
    const entry = await kv.get(key);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    try {
      const parsed = JSON.parse(decoder.decode(entry.value)) as Partial<SharedState>;
      const state: SharedState = { tat: typeof parsed.tat === 'number' ? parsed.tat : 0 };
      if (typeof parsed.penaltyUntil === 'number') state.penaltyUntil = parsed.penaltyUntil;
      if (typeof parsed.criticalUntil === 'number') state.criticalUntil = parsed.criticalUntil;
      if (Array.isArray(parsed.sent)) state.sent = parsed.sent.filter((t): t is number => typeof t === 'number');
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
        const ahead = (cached?.state.tat ?? 0) - clock() - horizonMs;
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
        const waiter = waiters.shift()!;
        if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
        try {
          const grant = await serialised(() =>
            mutate((state) => {
              const now = clock();
              // Seen only after a CAS conflict refreshed the state: yield to the critical broadcast.
              if (waiter.priority === 'normal' && (state.criticalUntil ?? 0) > now) return { next: undefined, result: undefined };
              const g = Math.max(now, state.tat);
              const next: SharedState = { ...state, tat: g + intervalMs };
              if (waiter.priority === 'critical') next.criticalUntil = Math.max(state.criticalUntil ?? 0, g + criticalHoldMs);
              return { next, result: g };
            }),
          );
          if (grant === undefined) {
            // Back behind any critical waiter that arrived meanwhile, ahead of the other normal ones.
            const at = waiters.findIndex((w) => w.priority === 'normal');
            if (at < 0) waiters.push(waiter);
            else waiters.splice(at, 0, waiter);
            if (waiter.onAbort) waiter.signal?.addEventListener('abort', waiter.onAbort, { once: true });
            continue;
          }
          waiter.resolve(grant);
        } catch (error) {
          waiter.reject(error as Error);
        }
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

  /** Record the actual start, waiting while the last ⌊rate⌋ starts fill the rolling second. */
  const commit = async (signal?: AbortSignal): Promise<number> => {
    for (;;) {
      const wait = await serialised(() =>
        mutate((state) => {
          const now = clock();
          const sent = (state.sent ?? []).filter((t) => t > now - 1000 - marginMs);
          const oldest = sent.length >= windowLimit ? sent[sent.length - windowLimit]! : undefined;
          if (oldest !== undefined && oldest + 1000 + marginMs > now) return { next: undefined, result: oldest + 1000 + marginMs - now };
          return { next: { ...state, sent: [...sent, now].slice(-windowLimit) }, result: 0 };
        }, signal),
      );
      if (wait <= 0) return clock();
      await sleep(wait, signal);
    }
  };

  return {
    intervalMs,
    async acquire(signal, opts) {
      const grant = await reserve(signal, opts?.priority ?? 'normal');
      await sleep(grant - clock(), signal);
      if (guard) await commit(signal);
      return grant;
    },
    slowDown,
    penalise: () => slowDown(clock() + penaltyMs),
  };
}
