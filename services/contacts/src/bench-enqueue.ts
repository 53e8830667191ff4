/**
 * Benchmark (not a test): enqueue a broadcast of N list contacts and compare with a bare JetStream
 * publish of N messages in the same run. Prints one JSON line. Usage: node dist/bench-enqueue.js [N]
 */
import { BROADCAST_REQUEST } from '@clarion/contracts';
import { createLogger } from '@clarion/logging';
import { connectNats, encodeJson, ensureBuckets, ensureStreams, jetstream, startNatsServer } from '@clarion/nats';
import { createEmbeddedStore } from '@clarion/store';
import { Writable } from 'node:stream';
import { createContactsService } from './app.js';
import { ensureContactsConsumers } from './nats-handlers.js';
import { WindowedPublisher } from './publisher.js';
import { ensureIndexes, repos, type ContactDoc } from './repo.js';

const n = Number(process.argv[2] ?? 200_000);
const server = await startNatsServer();
const nc = await connectNats({ servers: server.url, name: 'bench' });
const jsm = await ensureStreams(nc);
const kv = await ensureBuckets(nc);
await ensureContactsConsumers(jsm);
const store = await createEmbeddedStore();
await ensureIndexes(store);
const at = new Date().toISOString();
await repos(store).lists.insertOne({ _id: 'bench', name: 'bench', createdAt: at, updatedAt: at });
for (let i = 0; i < n; i += 10_000) {
  const docs: ContactDoc[] = [];
  for (let j = i; j < Math.min(n, i + 10_000); j++) {
    docs.push({ _id: `c-${j}`, listId: 'bench', number: `+1${String(2_000_000_000 + j)}`, vars: {}, flagged: false, createdAt: at, updatedAt: at });
  }
  await repos(store).contacts.insertMany(docs);
}
const quiet = new Writable({ write: (_c, _e, done) => done() });
const service = createContactsService({
  nc,
  js: jetstream(nc),
  kv,
  store,
  logger: createLogger({ service: 'contacts', level: 'silent', destination: quiet }),
  apiToken: 'bench-token',
  defaultCountry: 'US',
  maxImportBytes: 1,
});
service.start();

const rss = () => Math.round(process.memoryUsage().rss / 1e6);
let t = performance.now();
const reply = (await nc.request(BROADCAST_REQUEST, encodeJson({ name: 'bench', message: { text: 'hi' }, audience: { listIds: ['bench'] } }), { timeout: 600_000 })).json<{ counts: unknown }>();
const enqueueMs = performance.now() - t;
const rssAfterEnqueue = rss();

t = performance.now();
const publisher = new WindowedPublisher(nc);
for (let i = 0; i < n; i++) {
  await publisher.publish('dial.job.bare', { broadcastId: 'bare', contactId: `c${i}`, number: '+12125550100', attempt: 1 }, `bare.c${i}.1`);
}
await publisher.flush();
publisher.close();
const bareMs = performance.now() - t;

console.log(JSON.stringify({
  bench: 'contacts.enqueue',
  contacts: n,
  enqueueMs: Math.round(enqueueMs),
  bareWindowedPublishMs: Math.round(bareMs),
  ratio: Number((enqueueMs / bareMs).toFixed(2)),
  perSecond: Math.round(n / (enqueueMs / 1000)),
  rssMb: rssAfterEnqueue,
  counts: reply.counts,
  store: 'embedded',
  node: process.version,
}));
await service.stop();
await nc.drain();
await store.close();
await server.dispose();
