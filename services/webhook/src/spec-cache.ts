import { BroadcastSpec } from '@clarion/contracts';
import type { KV } from '@clarion/nats';

/** What the cache reports; the service turns it into log lines (libraries do not log). */
export type SpecCacheEvent =
  | { kind: 'invalid'; broadcastId: string; reason: string }
  | { kind: 'watch_error'; error: unknown };

export interface SpecCache {
  /** The spec when it is in memory: no I/O, for the hot path. */
  peek(id: string): BroadcastSpec | undefined;
  /** The spec, fetched once from KV on a miss (concurrent misses share one fetch). */
  get(id: string): Promise<BroadcastSpec | undefined>;
  /** Resolves once the initial values of the watch were loaded. */
  ready: Promise<void>;
  size(): number;
  close(): Promise<void>;
}

const NEGATIVE_TTL_MS = 2000;

/**
 * BroadcastSpecs from the `broadcasts` KV bucket, kept in memory and fresh by a watch that restarts
 * after errors. A key unknown to KV is remembered briefly so a flood of calls does not hammer KV.
 */
export function createSpecCache(
  kv: KV,
  options: { now?: () => number; onEvent?: (event: SpecCacheEvent) => void } = {},
): SpecCache {
  const now = options.now ?? Date.now;
  const specs = new Map<string, BroadcastSpec>();
  const missing = new Map<string, number>();
  const pending = new Map<string, Promise<BroadcastSpec | undefined>>();
  let closed = false;
  let stopWatch: (() => void) | undefined;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const parse = (id: string, value: unknown): BroadcastSpec | undefined => {
    const result = BroadcastSpec.safeParse(value);
    if (result.success) return result.data;
    options.onEvent?.({ kind: 'invalid', broadcastId: id, reason: result.error.message });
    return undefined;
  };

  const watchLoop = async (): Promise<void> => {
    while (!closed) {
      try {
        const iterator = await kv.watch({ key: '>' });
        stopWatch = () => iterator.stop();
        // An empty bucket yields no entries; count pending initial values to know when we are current.
        let initial = (await kv.status()).values;
        if (initial === 0) markReady();
        for await (const entry of iterator) {
          if (entry.operation === 'PUT') {
            let value: unknown;
            try {
              value = entry.json();
            } catch {
              value = undefined;
            }
            const spec = parse(entry.key, value);
            if (spec) {
              specs.set(entry.key, spec);
              missing.delete(entry.key);
            }
          } else {
            specs.delete(entry.key);
          }
          if (initial > 0 && --initial === 0) markReady();
          if (entry.delta === 0) markReady();
        }
      } catch (error) {
        if (!closed) options.onEvent?.({ kind: 'watch_error', error });
      }
      if (!closed) await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };
  const loop = watchLoop();

  const fetch = async (id: string): Promise<BroadcastSpec | undefined> => {
    const entry = await kv.get(id);
    if (!entry || entry.operation !== 'PUT') {
      missing.set(id, now());
      return undefined;
    }
    let value: unknown;
    try {
      value = entry.json();
    } catch {
      value = undefined;
    }
    const spec = parse(id, value);
    if (spec) specs.set(id, spec);
    else missing.set(id, now());
    return spec;
  };

  return {
    ready,
    peek: (id) => specs.get(id),
    size: () => specs.size,
    async get(id) {
      const cached = specs.get(id);
      if (cached) return cached;
      const missedAt = missing.get(id);
      if (missedAt !== undefined && now() - missedAt < NEGATIVE_TTL_MS) return undefined;
      let inFlight = pending.get(id);
      if (!inFlight) {
        inFlight = fetch(id).finally(() => pending.delete(id));
        pending.set(id, inFlight);
      }
      return inFlight;
    },
    async close() {
      closed = true;
      stopWatch?.();
      await loop;
    },
  };
}
