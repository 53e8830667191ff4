import { natsSettings } from '@clarion/config';
import { closeServer, listen, logShutdownEvents, onShutdown } from '@clarion/http';
import { createLogger } from '@clarion/logging';
import { connectNats, ensureBuckets, ensureStreams, jetstream } from '@clarion/nats';
import { createWebhookApp } from './app.js';
import { loadWebhookConfig, type WebhookConfig } from './config.js';

// The only file that reads process.env: connect, listen, drain on SIGTERM/SIGINT.
let config: WebhookConfig;
try {
  config = loadWebhookConfig(process.env);
} catch (error) {
  // A bad configuration is reported once, plainly, without a stack trace.
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: 'webhook', level: config.LOG_LEVEL });

const nc = await connectNats(natsSettings(config, 'clarion-webhook'));
await ensureStreams(nc, { replicas: config.NATS_REPLICAS });
const buckets = await ensureBuckets(nc, { replicas: config.NATS_REPLICAS });
const webhook = createWebhookApp({
  nc,
  js: jetstream(nc),
  broadcasts: buckets.broadcasts,
  logger,
  settings: {
    publicUrl: config.WEBHOOK_PUBLIC_URL,
    signatureSecret: config.signatureSecret,
    signatureMaxAgeSeconds: config.SIGNATURE_MAX_AGE_SECONDS,
    maxBodyBytes: config.MAX_BODY_BYTES,
    publishTimeoutMs: config.PUBLISH_TIMEOUT_MS,
    publishDeadlineMs: config.PUBLISH_DEADLINE_MS,
  },
});
// Start with the specs loaded so the first answers are served from memory (bounded wait).
await Promise.race([webhook.specs.ready, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
const server = await listen(webhook.app, config.PORT, config.HOST);
logger.info({ port: config.PORT, signed: config.signatureSecret !== undefined }, 'listening');

// Refuse new webhooks, let in-flight ones publish (the Voice API retries the refused), then drain NATS.
onShutdown({
  timeoutMs: 9_000,
  onEvent: logShutdownEvents(logger),
  steps: [
    { name: 'stop taking webhooks', run: () => Promise.all([closeServer(server), webhook.close()]) },
    { name: 'drain nats', run: () => nc.drain() },
  ],
});
