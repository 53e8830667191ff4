import { loadavg } from 'node:os';
import { benchAggregation } from '@clarion/reporter';
import { createStore } from '@clarion/store';
import type { Bench } from './types.js';

/**
 * Reporter aggregation throughput (DESIGN.md §8: ≥ 10,000 events/s): synthetic broadcast events applied
 * in batches, on the embedded store and, when MONGO_URL is set, on MongoDB. `-- reporter [events]`.
 */
export const run: Bench = async (args) => {
  const events = Number(args[0] ?? 200_000);
  if (!Number.isInteger(events) || events < 100) throw new RangeError(`events must be an integer ≥ 100, got ${args[0]}`);
  const batchSize = 500;
  const out: Record<string, unknown> = { events, batchSize, targetEventsPerSecond: 10_000 };

  const embedded = await createStore({});
  try {
    const r = await benchAggregation(embedded, { events, batchSize });
    out.embedded = { eventsPerSecond: r.eventsPerSecond, seconds: r.seconds, contacts: r.contacts };
  } finally {
    await embedded.close();
  }

  const mongoUrl = process.env.MONGO_URL;
  if (mongoUrl) {
    const mongo = await createStore({ mongoUrl, dbName: process.env.MONGO_DB ?? 'clarion_bench' });
    try {
      const r = await benchAggregation(mongo, { events, batchSize });
      out.mongo = { eventsPerSecond: r.eventsPerSecond, seconds: r.seconds, contacts: r.contacts };
    } finally {
      await mongo.close();
    }
  } else {
    out.mongo = 'skipped: MONGO_URL not set';
  }
  // The machine is shared: the load while measuring says how much to trust the figure.
  out.loadAverage1m = Number(loadavg()[0]?.toFixed(2));
  return out;
};
