import { createStore } from '@clarion/store';
import { benchAggregation } from './bench.js';

/** `npm run bench`: one JSON line with the reporter's aggregation throughput on the configured store. */
const events = Number(process.argv[2] ?? 100_000);
const store = await createStore({ mongoUrl: process.env.MONGO_URL, dbName: process.env.MONGO_DB ?? 'clarion_bench' });
const result = await benchAggregation(store, { events });
process.stdout.write(`${JSON.stringify({ bench: 'reporter-aggregation', store: store.kind, node: process.version, ...result })}\n`);
await store.close();
