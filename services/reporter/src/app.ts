import { Readable } from 'node:stream';
import Koa from 'koa';
import { Router } from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import {
  BROADCAST_CONTROL,
  CONSUMERS,
  ControlAction,
  decodeJson,
  DialJob,
  FINAL_STATES,
  Id,
  parseWith,
  STREAMS,
  StreamEvent,
  ValidationError,
} from '@clarion/contracts';
import { createMetrics, errorMiddleware, HttpError, notFound, opsMiddleware, requestTiming, requireToken, validate, Counter, Histogram } from '@clarion/http';
import type { Logger } from '@clarion/logging';
import { ensureConsumer, ensureStreams, startConsumeLoop, ack, term, type ConsumeLoop, type Disposition, type JsMsg, type NatsConnection } from '@clarion/nats';
import type { Store } from '@clarion/store';
import { z } from 'zod';
import { Aggregation, Batcher, type BatchResult, type ReportInput } from './aggregate.js';
import { attemptsCsv, contactsCsv } from './csv.js';
import { dashboardHtml } from './dashboard.js';
import { LiveUpdates } from './live.js';
import { openApiDocument } from './openapi.js';
import { InvalidCursorError, Reports } from './queries.js';
import { PENDING_STATES } from './records.js';

/** Everything the reporter needs, passed in (no I/O happens until `start`). */
export interface ReporterDeps {
  nc: NatsConnection;
  store: Store;
  logger: Logger;
  apiToken: string;
  clock?: () => Date;
  batchSize?: number;
  batchMs?: number;
  /** JetStream replicas for the streams it ensures (NATS_REPLICAS). */
  replicas?: number;
  /** How long to wait for the contacts service to answer a control request. */
  controlTimeoutMs?: number;
}

/** The reporter: consumers that aggregate events, and the Koa app serving the API and dashboard. */
export interface Reporter {
  app: Koa;
  aggregation: Aggregation;
  reports: Reports;
  /** Ensure streams, consumers and indexes, then start consuming. */
  start(): Promise<void>;
  /** Stop taking messages, write what is in flight, end live streams. */
  stop(): Promise<void>;
}

const PUBLIC_PATHS = new Set(['/', '/index.html', '/healthz', '/readyz', '/metrics', '/openapi.json', '/favicon.ico']);

const ListQuery = z.object({
  status: z.enum(['created', 'running', 'paused', 'cancelled', 'halted', 'completed']).optional(),
  since: z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString()).optional(),
  cursor: z.string().max(500).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(20),
});
// State filters are comma lists of state names; anything else (e.g. `{"$ne":null}`) is a 400, not an empty page.
const STATE_NAMES = new Set<string>([...FINAL_STATES, ...PENDING_STATES, 'final', 'pending']);
const StateList = z
  .string()
  .max(300)
  .regex(/^[a-z_]+(,[a-z_]+)*$/, 'must be a comma list of states such as busy,no_answer')
  .refine((list) => list.split(',').every((s) => STATE_NAMES.has(s)), {
    message: `must name known states: ${[...STATE_NAMES].join(', ')}`,
  });
const ContactsQuery = z.object({
  state: StateList.optional(),
  notState: StateList.optional(),
  cursor: z.string().max(500).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const NumberQuery = z.object({
  number: z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 number such as +14155550100'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const ExportQuery = z.object({ type: z.enum(['contacts', 'attempts']).default('contacts') });
const ControlBody = z.object({ reason: z.string().max(500).optional() }).default({});

/** Build the reporter from its dependencies. */
export function createReporter(deps: ReporterDeps): Reporter {
  const { nc, store, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  const batchSize = deps.batchSize ?? 500;
  const aggregation = new Aggregation(store);
  const reports = new Reports(store, clock);
  const live = new LiveUpdates((id) => reports.summary(id));
  const { registry, httpDuration } = createMetrics('reporter');
  const applied = new Counter({ name: 'reporter_events_applied_total', help: 'Messages applied to the store', labelNames: ['source'], registers: [registry] });
  const rejected = new Counter({ name: 'reporter_events_rejected_total', help: 'Messages terminated as invalid', labelNames: ['source'], registers: [registry] });
  const batchSeconds = new Histogram({ name: 'reporter_batch_seconds', help: 'Time to write one batch', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] });

  // Status snapshots for listing are refreshed at most twice a second per broadcast.
  const refreshTimers = new Map<string, NodeJS.Timeout>();
  const scheduleRefresh = (bid: string) => {
    if (refreshTimers.has(bid)) return;
    refreshTimers.set(
      bid,
      setTimeout(() => {
        refreshTimers.delete(bid);
        reports.refresh(bid).catch((error: unknown) => logger.warn({ err: error, broadcastId: bid }, 'status refresh failed'));
      }, 500),
    );
  };

  const onBatch = (result: BatchResult, size: number) => {
    for (const c of result.finalConflicts) {
      logger.warn(c, 'later final state ignored: the first final state of a contact is kept');
    }
    for (const bid of result.broadcasts) {
      reports.invalidate(bid);
      live.notify(bid);
      scheduleRefresh(bid);
    }
    logger.debug({ size, broadcasts: result.broadcasts.size }, 'batch applied');
  };
  const batcher = new Batcher(
    async (inputs) => {
      const end = batchSeconds.startTimer();
      const result = await aggregation.apply(inputs);
      end();
      onBatch(result, inputs.length);
    },
    batchSize,
    deps.batchMs ?? 50,
  );

  /** Validate one message at the edge; bad ones are terminated with the reason logged. */
  const handlerFor = (source: 'events' | 'dial') => async (msg: JsMsg): Promise<Disposition> => {
    let input: ReportInput;
    try {
      const body = decodeJson(msg.data, `${source} message`);
      input = source === 'events' ? { kind: 'event', event: parseWith(StreamEvent, body, 'stream event') } : { kind: 'job', job: parseWith(DialJob, body, 'dial job') };
    } catch (error) {
      const reason = error instanceof ValidationError ? error.message : String(error);
      rejected.inc({ source });
      logger.warn({ subject: msg.subject, seq: msg.seq, reason }, 'invalid message terminated');
      return term(reason.slice(0, 500));
    }
    await batcher.submit(input);
    applied.inc({ source });
    return ack;
  };

  let loops: ConsumeLoop[] = [];
  let ready = false;
  let stopping = false;

  const start = async () => {
    const jsm = await ensureStreams(nc, { replicas: deps.replicas ?? 1 });
    await ensureConsumer(jsm, STREAMS.events.name, { durable_name: CONSUMERS.reporterEvents, filter_subject: 'evt.>', max_ack_pending: batchSize * 4 });
    await ensureConsumer(jsm, STREAMS.dial.name, { durable_name: CONSUMERS.reporterDial, filter_subject: 'dial.job.>', max_ack_pending: batchSize * 4 });
    await aggregation.ensureIndexes();
    // Repair what a crash left behind before taking new messages: counters, then the listed statuses.
    const recovered = await aggregation.recoverCounts();
    if (recovered > 0) logger.warn({ contacts: recovered }, 'final contacts added to the counters after a crash');
    const refreshed = await reports.refreshUnfinished();
    logger.info({ broadcasts: refreshed }, 'broadcast statuses recomputed at start');
    const onError = (error: unknown) => logger.error({ err: error }, 'consume error; the message will be redelivered');
    loops = [
      startConsumeLoop({ nc, stream: STREAMS.events.name, consumer: CONSUMERS.reporterEvents, concurrency: batchSize, handler: handlerFor('events'), onError }),
      startConsumeLoop({ nc, stream: STREAMS.dial.name, consumer: CONSUMERS.reporterDial, concurrency: batchSize, handler: handlerFor('dial'), onError }),
    ];
    ready = true;
  };

  const stop = async () => {
    stopping = true;
    ready = false;
    const stopped = Promise.all(loops.map((l) => l.stop()));
    // Handlers in flight wait for their batch: write it now rather than after BATCH_MS.
    await batcher.flush();
    await stopped;
    await batcher.flush();
    for (const timer of refreshTimers.values()) clearTimeout(timer);
    refreshTimers.clear();
    live.closeAll();
  };

  const app = new Koa();
  app.use(errorMiddleware((error, ctx) => logger.error({ err: error, path: ctx.path }, 'unexpected error')));
  app.use(requestTiming(httpDuration));
  app.use(
    opsMiddleware({
      registry,
      checks: { nats: () => !nc.isClosed() && ready && !stopping, store: () => store.ping() },
    }),
  );
  app.use(async (ctx, next) => {
    if (ctx.method === 'GET' && (ctx.path === '/' || ctx.path === '/index.html')) {
      ctx.type = 'html';
      ctx.set('cache-control', 'no-cache');
      ctx.body = dashboardHtml;
      return;
    }
    if (ctx.method === 'GET' && ctx.path === '/openapi.json') {
      ctx.body = openApiDocument;
      return;
    }
    return next();
  });
  app.use(requireToken(deps.apiToken, (path) => PUBLIC_PATHS.has(path)));
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (error instanceof InvalidCursorError) throw new HttpError(400, error.code, error.message);
      throw error;
    }
  });
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: '16kb' }));

  const router = new Router({ prefix: '/v1' });
  const broadcastId = (raw: string | undefined) => validate(Id, raw, 'broadcast id');

  router.get('/broadcasts', async (ctx) => {
    const q = validate(ListQuery, ctx.query, 'query');
    ctx.body = await reports.list(q);
  });
  router.get('/broadcasts/:id', async (ctx) => {
    const id = broadcastId(ctx.params.id);
    const summary = await reports.summary(id);
    if (!summary) throw notFound(`broadcast ${id}`);
    ctx.body = summary;
  });
  router.get('/broadcasts/:id/timeline', async (ctx) => {
    const id = broadcastId(ctx.params.id);
    const timeline = await reports.timeline(id);
    if (!timeline) throw notFound(`broadcast ${id}`);
    ctx.body = timeline;
  });
  router.get('/broadcasts/:id/contacts', async (ctx) => {
    const id = broadcastId(ctx.params.id);
    const q = validate(ContactsQuery, ctx.query, 'query');
    ctx.body = await reports.contacts(id, q);
  });
  router.get('/broadcasts/:id/contacts/:cid/attempts', async (ctx) => {
    const id = broadcastId(ctx.params.id);
    const cid = validate(Id, ctx.params.cid, 'contact id');
    ctx.body = { items: await reports.attemptsOf(id, cid) };
  });
  router.get('/attempts', async (ctx) => {
    const q = validate(NumberQuery, ctx.query, 'query');
    ctx.body = { items: await reports.attemptsByNumber(q.number, q.limit) };
  });
  router.get('/broadcasts/:id/export.csv', async (ctx) => {
    const id = broadcastId(ctx.params.id);
    const { type } = validate(ExportQuery, ctx.query, 'query');
    if (!(await reports.exists(id))) throw notFound(`broadcast ${id}`);
    ctx.type = 'text/csv; charset=utf-8';
    ctx.attachment(`broadcast-${id}-${type}.csv`);
    const lines = type === 'contacts' ? contactsCsv(reports.allContacts(id)) : attemptsCsv(reports.allAttempts(id));
    ctx.body = Readable.from(lines);
  });
  router.get('/broadcasts/:id/stream', async (ctx) => {
    const id = broadcastId(ctx.params.id);
    if (!(await reports.exists(id))) throw notFound(`broadcast ${id}`);
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.set({ 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    ctx.type = 'text/event-stream';
    ctx.status = 200;
    const stream = live.open(id);
    ctx.req.on('close', () => stream.destroy());
    ctx.body = stream;
  });
  router.post('/broadcasts/:id/:action', async (ctx) => {
    const id = broadcastId(ctx.params.id);
    const action = validate(ControlAction, ctx.params.action, 'action');
    const body = validate(ControlBody, ctx.request.body ?? {}, 'request body');
    // Every contact already has its final state: pausing or cancelling would change nothing but the label.
    const summary = await reports.summary(id);
    if (summary?.status === 'completed') {
      throw new HttpError(409, 'already_completed', `broadcast ${id} is completed: every contact has its final state, there is nothing to ${action}`);
    }
    ctx.body = await control(nc, { broadcastId: id, action, ...(body.reason ? { reason: body.reason } : {}) }, deps.controlTimeoutMs ?? 5000);
  });
  app.use(router.routes());
  app.use(router.allowedMethods());

  return { app, aggregation, reports, start, stop };
}

/** Forward pause/resume/cancel to the contacts service and return its reply. */
async function control(nc: NatsConnection, request: { broadcastId: string; action: string; reason?: string }, timeout: number): Promise<unknown> {
  let reply: unknown;
  try {
    const msg = await nc.request(BROADCAST_CONTROL, JSON.stringify(request), { timeout });
    reply = decodeJson(msg.data, 'control reply');
  } catch (error) {
    const text = String((error as Error)?.message ?? error);
    if (/no responders/i.test(text) || (error as { code?: string })?.code === '503') {
      throw new HttpError(503, 'control_unavailable', 'no service answers broadcast.control right now; try again');
    }
    if (/timeout/i.test(text)) throw new HttpError(504, 'control_timeout', 'broadcast.control did not answer in time');
    throw error;
  }
  const r = reply as { ok?: unknown; error?: { code?: unknown; message?: unknown } };
  if (r && r.ok === false) {
    const code = typeof r.error?.code === 'string' ? r.error.code : 'control_refused';
    const status = code === 'not_found' ? 404 : code === 'invalid_request' ? 400 : code === 'internal' ? 502 : 409;
    throw new HttpError(status, code, typeof r.error?.message === 'string' ? r.error.message : 'control request refused', r.error);
  }
  return reply;
}
