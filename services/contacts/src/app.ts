import { createMetrics, errorMiddleware, opsMiddleware, requestTiming, requireToken } from '@clarion/http';
import type { Logger } from '@clarion/logging';
import type { JetStreamClient, KV, NatsConnection } from '@clarion/nats';
import type { NormaliserPool } from '@clarion/phone';
import type { Store } from '@clarion/store';
import Koa from 'koa';
import { createContactsMetrics } from './metrics.js';
import { startNatsHandlers, type NatsHandlers } from './nats-handlers.js';
import { repos as reposOf } from './repo.js';
import { createRouter } from './routes.js';

/** Everything the service needs, passed in (no I/O happens on import). */
export interface ContactsDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  kv: { broadcasts: KV; control: KV; idempotency: KV };
  store: Store;
  logger: Logger;
  apiToken: string;
  defaultCountry: string;
  maxImportBytes: number;
  now?: () => Date;
  /** Outstanding dial-job publishes allowed while enqueueing. */
  maxInFlight?: number;
  /** Worker threads that normalise imported numbers beside the event loop; inline when not given. */
  normaliser?: NormaliserPool;
}

export interface ContactsService {
  /** The Koa app (REST API + /healthz /readyz /metrics). */
  app: Koa;
  /** Start serving NATS subjects and consumers. */
  start(): void;
  /** Stop taking NATS work and wait for in-flight work. */
  stop(): Promise<void>;
}

/** Build the contacts service from its dependencies. */
export function createContactsService(deps: ContactsDeps): ContactsService {
  const now = deps.now ?? (() => new Date());
  const repos = reposOf(deps.store);
  const { registry, httpDuration } = createMetrics('contacts');
  const metrics = createContactsMetrics(registry);
  const app = new Koa();
  app.proxy = true;
  app.use(errorMiddleware((error, ctx) => deps.logger.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed')));
  app.use(requestTiming(httpDuration));
  app.use(
    opsMiddleware({
      registry,
      checks: { nats: () => !deps.nc.isClosed(), store: () => deps.store.ping() },
    }),
  );
  app.use(requireToken(deps.apiToken));
  const { normaliser } = deps;
  const router = createRouter({
    repos,
    now,
    defaultCountry: deps.defaultCountry,
    maxImportBytes: deps.maxImportBytes,
    storeKind: deps.store.kind,
    metrics,
    ...(normaliser ? { normalise: (batch) => normaliser.normalise(batch) } : {}),
  });
  app.use(router.routes());
  app.use(router.allowedMethods());

  let handlers: NatsHandlers | undefined;
  return {
    app,
    start() {
      handlers ??= startNatsHandlers({
        nc: deps.nc,
        js: deps.js,
        kv: deps.kv,
        repos,
        now,
        logger: deps.logger,
        metrics,
        ...(deps.maxInFlight !== undefined ? { maxInFlight: deps.maxInFlight } : {}),
      });
    },
    async stop() {
      await handlers?.stop();
      handlers = undefined;
    },
  };
}
