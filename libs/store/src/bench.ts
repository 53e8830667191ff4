/** A micro-benchmark (not a test): n upserts by `_id` with $set/$inc, the reporter's hot path. */

import type { Store } from './port.js';

/** Run n upserts over n/10 distinct ids (so both insert and update paths run); returns ops/s. */
export async function benchStore(store: Store, n: number): Promise<number> {
  const collection = store.collection('bench');
  const ids = Math.max(1, Math.floor(n / 10));
  const started = performance.now();
  const batch: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    batch.push(
      collection.updateOne(
        { _id: `c${i % ids}` },
        { $set: { status: 'answered', at: i }, $inc: { attempts: 1 } },
        { upsert: true },
      ),
    );
    // Bounded concurrency, as a consumer loop would have.
    if (batch.length >= 64) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  const seconds = (performance.now() - started) / 1000;
  return Math.round(n / seconds);
}
