import { ConfigError, natsSettings } from '@clarion/config';
import { listen } from '@clarion/http';
import { createLogger } from '@clarion/logging';
import { connectNats, ensureBuckets, ensureStreams, jetstream } from '@clarion/nats';
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

const service = createContactsService({
  nc,
  js: jetstream(nc),
  kv: buckets,
  store,
  logger,
  apiToken: config.API_TOKEN,
  defaultCountry: config.DEFAULT_COUNTRY,
  maxImportBytes: config.MAX_IMPORT_BYTES,
});
service.start();
const server = await listen(service.app, config.PORT, config.HOST);
logger.info({ port: config.PORT, store: store.kind }, 'listening');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  const force = setTimeout(() => {
    logger.error('shutdown took longer than 9 s; exiting');
    process.exit(1);
  }, 9_000);
  force.unref();
  // Stop taking HTTP and NATS work; in-flight imports and broadcasts finish first.
  const httpClosed = new Promise((resolve) => server.close(resolve));
  server.closeIdleConnections();
  await Promise.all([httpClosed, service.stop()]);
  await nc.drain().catch(() => undefined);
  await store.close().catch(() => undefined);
  clearTimeout(force);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
