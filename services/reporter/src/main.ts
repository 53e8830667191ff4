import { natsSettings } from '@clarion/config';
import { closeServer, listen, logShutdownEvents, onShutdown } from '@clarion/http';
import { createLogger } from '@clarion/logging';
import { connectNats } from '@clarion/nats';
import { createStore } from '@clarion/store';
import { createReporter } from './app.js';
import { loadReporterConfig } from './config.js';

/** Entry point: the only place that reads process.env. */
async function main(): Promise<void> {
  const config = loadReporterConfig(process.env);
  const logger = createLogger({ service: 'reporter', level: config.LOG_LEVEL });
  const store = await createStore({ mongoUrl: config.MONGO_URL, dbName: config.MONGO_DB, dir: config.DATA_DIR });
  const nc = await connectNats(natsSettings(config, 'reporter'));
  const reporter = createReporter({
    nc,
    store,
    logger,
    apiToken: config.API_TOKEN,
    batchSize: config.BATCH_SIZE,
    batchMs: config.BATCH_MS,
    replicas: config.NATS_REPLICAS,
  });
  await reporter.start();
  const server = await listen(reporter.app, config.PORT, config.HOST);
  const address = server.address();
  logger.info({ port: typeof address === 'object' && address ? address.port : config.PORT, store: store.kind }, 'listening');

  // Stop serving, flush the aggregation (acks after the store write), then drain NATS and close the store.
  onShutdown({
    timeoutMs: 9_000,
    onEvent: logShutdownEvents(logger),
    steps: [
      // SSE streams never end by themselves, so open connections get no grace.
      { name: 'stop taking work', run: () => Promise.all([closeServer(server, 0), reporter.stop()]) },
      { name: 'drain nats', run: () => nc.drain() },
      { name: 'close store', run: () => store.close() },
    ],
  });
}

main().catch((error: unknown) => {
  // The logger may not exist yet (bad config): write one JSON line by hand.
  process.stderr.write(`${JSON.stringify({ level: 'fatal', service: 'reporter', msg: 'failed to start', error: String((error as Error)?.message ?? error) })}\n`);
  process.exit(1);
});
