import { ConfigError, natsSettings } from '@clarion/config';
import { closeServer, listen, logShutdownEvents, onShutdown } from '@clarion/http';
import { createLogger } from '@clarion/logging';
import { connectNats, ensureBuckets, ensureStreams, jetstream } from '@clarion/nats';
import { createNormaliserPool } from '@clarion/phone';
import { createStore } from '@clarion/store';
import { createContactsService } from './app.js';
import { loadContactsConfig, type Config } from './config.js';
import { ensureContactsConsumers } from './nats-handlers.js';
import { ensureIndexes } from './repo.js';

let config: Config;
try {
  config = loadContactsConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  createLogger({ service: 'contacts' }).fatal({ problems: error.problems }, error.message);
  process.exit(1);
}
const logger = createLogger({ service: 'contacts', level: config.LOG_LEVEL });

const nc = await connectNats(natsSettings(config, 'contacts'));
const replicas = { replicas: config.NATS_REPLICAS };
const jsm = await ensureStreams(nc, replicas);
const buckets = await ensureBuckets(nc, replicas);
await ensureContactsConsumers(jsm);
const store = await createStore({
  ...(config.MONGO_URL ? { mongoUrl: config.MONGO_URL } : {}),
  dbName: config.MONGO_DB,
  ...(config.DATA_DIR ? { dir: config.DATA_DIR } : {}),
});
await ensureIndexes(store);

// Threads start with the first import; batches still in flight when it closes finish inline.
const normaliser = createNormaliserPool({ threads: config.IMPORT_THREADS });
const service = createContactsService({
  nc,
  js: jetstream(nc),
  kv: buckets,
  store,
  logger,
  apiToken: config.API_TOKEN,
  defaultCountry: config.DEFAULT_COUNTRY,
  maxImportBytes: config.MAX_IMPORT_BYTES,
  normaliser,
});
service.start();
const server = await listen(service.app, config.PORT, config.HOST);
logger.info({ port: config.PORT, store: store.kind }, 'listening');

// Stop taking HTTP and NATS work (in-flight imports and broadcasts finish), then drain NATS.
onShutdown({
  timeoutMs: 9_000,
  onEvent: logShutdownEvents(logger),
  steps: [
    { name: 'stop taking work', run: () => Promise.all([closeServer(server), service.stop()]) },
    { name: 'drain nats', run: () => nc.drain() },
    { name: 'stop import threads', run: () => normaliser.close() },
    { name: 'close store', run: () => store.close() },
  ],
});
