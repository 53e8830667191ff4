import Koa from 'koa';
import { createMetrics, errorMiddleware, opsMiddleware, type Registry } from '@clarion/http';
import { Counter, Gauge } from 'prom-client';
import type { Logger } from '@clarion/logging';
import type { NatsConnection } from '@clarion/nats';
import type { Dialer } from './dialer.js';

export interface AppDeps {
  dialer: Dialer;
  nc: NatsConnection;
  logger: Logger;
}

/** The dialer's HTTP face: /healthz, /readyz (NATS up, watches running) and /metrics. No I/O here. */
export function createApp(deps: AppDeps): { app: Koa; registry: Registry } {
  const { registry } = createMetrics('dialer');
  const stats = () => deps.dialer.stats();
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  // Counters mirror the dialer's own tallies at scrape time.
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  counter('dialer_calls_placed_total', 'calls created by this replica', () => stats().placed);
  counter('dialer_calls_ambiguous_total', 'creates that may or may not have placed a call', () => stats().ambiguous);
  counter('dialer_rate_limited_total', '429 answers from the Voice API', () => stats().rateLimited);
  counter('dialer_calls_refused_total', 'creates refused for one number (4xx)', () => stats().refused);
  counter('dialer_breaker_openings_total', 'times the Voice API refused the account and dialling halted', () => stats().breakerOpenings);
  gauge('dialer_breaker_open', '1 while dialling is halted because the Voice API refused the account', () => stats().breakerOpen);
  counter('dialer_claims_lost_total', 'claims taken over while waiting for the pacer (not sent here)', () => stats().claimsLost);
  gauge('dialer_active_calls', 'calls in progress on this replica', () => stats().activeCalls);
  gauge('dialer_broadcasts', 'broadcasts known to this replica', () => stats().broadcasts);

  const app = new Koa();
  app.use(errorMiddleware((error) => deps.logger.error({ err: error }, 'unexpected HTTP error')));
  app.use(
    opsMiddleware({
      registry,
      checks: { nats: () => !deps.nc.isClosed(), dialer: () => deps.dialer.isReady() },
    }),
  );
  return { app, registry };
}
