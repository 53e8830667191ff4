import type { KV } from '@nats-io/kv';

/** Paces call starts: `acquire` resolves when the caller may start one call. */
export interface Pacer {
  /** Reserve the next slot and wait for it; resolves with the granted time (epoch ms). */
  acquire(signal?: AbortSignal): Promise<number>;
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
}

interface SharedState {
  /** Theoretical arrival time: the earliest next grant (epoch ms). */
  tat: number;
  /** Latest penalty end, kept for operators. */
  penaltyUntil?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * GCRA whose theoretical arrival time lives in NATS KV and advances by compare-and-set, so every
 * replica sharing the key together stays under the rate. Reservations of one instance are
 * serialised locally, which keeps CAS conflicts to the replicas' count.
 */
export function createSharedPacer(options: SharedPacerOptions): Pacer {
  const { intervalMs, penaltyMs, clock, sleep } = common(options);
  const { kv, key } = options;
  const maxConflicts = options.maxConflicts ?? 1000;
  let cached: { state: SharedState; revision: number } | undefined;
  let chain: Promise<unknown> = Promise.resolve();

  const read = async (): Promise<{ state: SharedState; revision: number } | undefined> => {
    const entry = await kv.get(key);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    try {
      const parsed = JSON.parse(decoder.decode(entry.value)) as Partial<SharedState>;
      const state: SharedState = { tat: typeof parsed.tat === 'number' ? parsed.tat : 0 };
      if (typeof parsed.penaltyUntil === 'number') state.penaltyUntil = parsed.penaltyUntil;
      return { state, revision: entry.revision };
    } catch {
      // Unreadable state is overwritten by the next CAS: pacing restarts from now.
      return { state: { tat: 0 }, revision: entry.revision };
    }
  };

  /** Apply `change` to the shared state with CAS, retrying on conflict; returns the new state. */
  const mutate = async <T>(change: (state: SharedState) => { next: SharedState; result: T }, signal?: AbortSignal): Promise<T> => {
    let conflicts = 0;
    let fresh = false;
    for (;;) {
      if (signal?.aborted) throw new PacerError('aborted', 'pacer wait aborted');
      const current = cached;
      const { next, result } = change(current?.state ?? { tat: 0 });
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
        next: { tat: Math.max(state.tat, untilMs), penaltyUntil: Math.max(state.penaltyUntil ?? 0, untilMs) },
        result: undefined,
      })),
    );
  };

  return {
    intervalMs,
    async acquire(signal) {
      const grant = await serialised(() =>
        mutate((state) => {
          const g = Math.max(clock(), state.tat);
          return { next: { ...state, tat: g + intervalMs }, result: g };
        }, signal),
      );
      await sleep(grant - clock(), signal);
      return grant;
    },
    slowDown,
    penalise: () => slowDown(clock() + penaltyMs),
  };
}
