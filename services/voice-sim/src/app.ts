import Koa, { type Context, type Middleware } from 'koa';
import { Router } from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import type { Logger } from '@clarion/logging';
import { Counter, createMetrics, errorMiddleware, HttpError, opsMiddleware, requestTiming } from '@clarion/http';
import type { Socket } from 'node:net';
import { AuthError, RequestVerifier, webhookSigner } from './auth.js';
import { SimSettings, type VoiceSimConfig } from './config.js';
import { uniform, overrideFor } from './outcomes.js';
import { createCallSchema, invalidParameters, ListCallsQuery, ModifyCallBody, type InvalidParameter } from './schemas.js';
import { Engine, type Clock, type SimCall } from './sim.js';
import { httpSend, type HttpSend } from './http-send.js';

/** What the embedding process passes in. */
export interface VoiceSimDeps {
  config: VoiceSimConfig;
  clock?: Clock;
  /** How webhooks are sent; node:http with keep-alive by default (`fetch` fits too). */
  fetch?: HttpSend;
  logger?: Logger;
}

/** A Vonage-style error answered as RFC 7807 `application/problem+json`. */
export class VonageProblem extends Error {
  override readonly name = 'VonageProblem';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly invalid?: InvalidParameter[],
  ) {
    super(detail);
  }
}

const problemTitle: Record<number, [string, string]> = {
  400: ['invalid-params', 'Bad Request'],
  401: ['unauthorized', 'Unauthorized'],
  404: ['not-found', 'Not Found'],
  429: ['throttled', 'Too Many Requests'],
  500: ['internal-error', 'Internal Server Error'],
  503: ['unavailable', 'Service Unavailable'],
};

function problem(status: number, detail: string, invalid?: InvalidParameter[]): VonageProblem {
  const [code, title] = problemTitle[status] ?? ['error', 'Error'];
  return new VonageProblem(status, code, title, detail, invalid);
}

/** Turns errors under /v1 into problem+json, as the Voice API answers. */
function problemMiddleware(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw problem(404, `No route for ${ctx.method} ${ctx.path}`);
    } catch (raw) {
      let p: VonageProblem;
      if (raw instanceof VonageProblem) p = raw;
      else if (raw instanceof AuthError) p = problem(401, raw.detail);
      else {
        const status = (raw as { status?: number }).status ?? 500;
        p = status < 500 ? problem(status, (raw as Error).message || 'Bad request') : problem(500, 'Internal error');
        if (status >= 500) ctx.app.emit('error', raw, ctx);
      }
      ctx.status = p.status;
      ctx.type = 'application/problem+json';
      ctx.body = {
        type: `https://developer.vonage.com/api-errors#${p.code}`,
        title: p.title,
        detail: p.detail,
        instance: crypto.randomUUID(),
        ...(p.invalid ? { invalid_parameters: p.invalid } : {}),
      };
    }
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

function callDetail(call: SimCall) {
  const answered = call.answeredAt !== undefined;
  const duration = answered && call.endedAt !== undefined ? Math.round(call.talkSec) : 0;
  return {
    _links: { self: { href: `/v1/calls/${call.uuid}` } },
    uuid: call.uuid,
    conversation_uuid: call.conversationUuid,
    to: { type: 'phone', number: call.to },
    from: { type: 'phone', number: call.from },
    status: call.status,
    direction: 'outbound',
    rate: '0.00450000',
    price: ((duration / 60) * 0.0045).toFixed(8),
    duration: String(duration),
    start_time: answered ? iso(call.answeredAt!) : null,
    end_time: call.endedAt !== undefined ? iso(call.endedAt) : null,
    network: 'US-VIRTUAL-LEVEL3',
  };
}

function deepMerge(base: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch) || base === null || typeof base !== 'object' || Array.isArray(base)) return patch;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch)) out[k] = deepMerge(out[k], v);
  return out;
}

/**
 * The simulator as a Koa app (no I/O until it serves a request). `stop()` aborts calls in progress
 * (after `graceMs`) and closes hung create requests.
 */
export function createVoiceSim(deps: VoiceSimDeps) {
  const { config, logger } = deps;
  const clock: Clock = deps.clock ?? { now: () => Date.now() };
  const fetchImpl = deps.fetch ?? httpSend;
  const initial = SimSettings.parse(config.sim);
  let settings = initial;
  let stopping = false;
  const hung = new Set<Socket>();
  const hangTimers = new Set<NodeJS.Timeout>();

  const verifier = new RequestVerifier(config.publicKeyPem, config.applicationId);
  const signer = config.signatureSecret ? webhookSigner({ secret: config.signatureSecret, apiKey: config.apiKey, applicationId: config.applicationId }) : undefined;
  const engine = new Engine({
    settings: () => settings,
    clock,
    fetch: fetchImpl,
    signer,
    logFile: config.logFile,
    onError: (message, error) => logger?.error({ err: error }, message),
  });

  const { registry, httpDuration } = createMetrics('voice-sim');
  const createResponses = new Counter({ name: 'voice_sim_create_responses_total', help: 'POST /v1/calls responses by status', labelNames: ['status'], registers: [registry] });
  const placed = new Counter({ name: 'voice_sim_calls_placed_total', help: 'Calls placed by simulated outcome', labelNames: ['outcome'], registers: [registry] });

  const createSchema = () => createCallSchema({ beepTimeoutMin: settings.validation.beepTimeoutMin, lengthTimerMax: settings.validation.lengthTimerMax });
  const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

  const authenticate = async (ctx: Context) => {
    await verifier.verify(ctx.get('authorization') || undefined, clock.now());
  };
  const limitOther = () => {
    if (!engine.otherWindow.tryAcquire(clock.now())) {
      engine.stats.rejected_429_other += 1;
      throw problem(429, `More than ${settings.otherRps} requests in one second`);
    }
  };

  const v1 = new Router({ prefix: '/v1' });
  v1.use(async (ctx, next) => {
    engine.stats.requests += 1;
    await next();
  });

  v1.post('/calls', async (ctx) => {
    engine.stats.create_requests += 1;
    try {
      if (stopping) throw problem(503, 'The simulator is shutting down');
      await authenticate(ctx);
      const parsed = createSchema().safeParse(ctx.request.body);
      if (!parsed.success) throw problem(400, 'The request failed validation', invalidParameters(parsed.error));
      const body = parsed.data;
      const now = clock.now();
      if (!engine.cpsWindow.tryAcquire(now)) {
        engine.stats.rejected_429 += 1;
        throw problem(429, `More than ${settings.cps} calls in one second`);
      }
      const number = body.to[0]!.number;
      const requestIndex = engine.nextCreateRequest(number);
      const f = settings.faults;
      if (f.createLatencyMs > 0) await realSleep(f.createLatencyMs);
      const override = overrideFor(settings, number);
      const fail5xx = override.createStatus ?? (uniform(settings.seed, '5xx', number, requestIndex) < f.create5xxRate ? f.create5xxStatus : undefined);
      if (fail5xx !== undefined) {
        engine.stats.create_5xx += 1;
        throw problem(fail5xx, 'Simulated provider failure; the call was not placed');
      }
      const call = engine.place(body);
      placed.inc({ outcome: call.outcome });
      logger?.debug({ uuid: call.uuid, to: call.to, outcome: call.outcome }, 'call placed');
      const timeoutMode = override.timeoutAfterPlace ?? (uniform(settings.seed, 'timeout', number, requestIndex) < f.timeoutAfterPlaceRate ? f.timeoutAfterPlaceMode : undefined);
      if (timeoutMode) {
        engine.stats.timeouts_after_place += 1;
        ctx.respond = false;
        const socket = ctx.req.socket;
        if (timeoutMode === 'reset') {
          socket.destroy();
        } else {
          hung.add(socket);
          const timer = setTimeout(() => {
            hangTimers.delete(timer);
            hung.delete(socket);
            socket.destroy();
          }, f.hangMs);
          hangTimers.add(timer);
        }
        createResponses.inc({ status: timeoutMode });
        return;
      }
      ctx.status = 201;
      ctx.body = { uuid: call.uuid, status: 'started', direction: 'outbound', conversation_uuid: call.conversationUuid };
      createResponses.inc({ status: '201' });
    } catch (error) {
      createResponses.inc({ status: String(error instanceof VonageProblem ? error.status : error instanceof AuthError ? 401 : 500) });
      throw error;
    }
  });

  v1.get('/calls/:uuid', async (ctx) => {
    await authenticate(ctx);
    limitOther();
    const call = engine.calls.get(ctx.params.uuid!);
    if (!call) throw problem(404, `Call ${ctx.params.uuid} was not found`);
    ctx.body = callDetail(call);
  });

  v1.get('/calls', async (ctx) => {
    await authenticate(ctx);
    limitOther();
    const parsed = ListCallsQuery.safeParse(ctx.query);
    if (!parsed.success) throw problem(400, 'The request failed validation', invalidParameters(parsed.error));
    const q = parsed.data;
    const start = q.date_start ? Date.parse(q.date_start) : -Infinity;
    const end = q.date_end ? Date.parse(q.date_end) : Infinity;
    let matching = engine.order.filter(
      (c) => (!q.status || c.status === q.status) && (!q.conversation_uuid || c.conversationUuid === q.conversation_uuid) && c.createdAt >= start && c.createdAt <= end,
    );
    if (q.order === 'desc') matching = [...matching].reverse();
    const page = matching.slice(q.record_index, q.record_index + q.page_size);
    const href = (index: number) => {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(ctx.query)) if (typeof v === 'string' && k !== 'record_index' && k !== 'page_size') params.set(k, v);
      params.set('page_size', String(q.page_size));
      params.set('record_index', String(index));
      return { href: `/v1/calls?${params.toString()}` };
    };
    const lastIndex = Math.max(0, Math.floor((matching.length - 1) / q.page_size) * q.page_size);
    ctx.body = {
      count: matching.length,
      page_size: q.page_size,
      record_index: q.record_index,
      _links: {
        self: href(q.record_index),
        first: href(0),
        last: href(lastIndex),
        ...(q.record_index + q.page_size < matching.length ? { next: href(q.record_index + q.page_size) } : {}),
        ...(q.record_index > 0 ? { prev: href(Math.max(0, q.record_index - q.page_size)) } : {}),
      },
      _embedded: { calls: page.map(callDetail) },
    };
  });

  v1.put('/calls/:uuid', async (ctx) => {
    await authenticate(ctx);
    limitOther();
    const parsed = ModifyCallBody.safeParse(ctx.request.body);
    if (!parsed.success) throw problem(400, 'The request failed validation', invalidParameters(parsed.error));
    const call = engine.calls.get(ctx.params.uuid!);
    if (!call) throw problem(404, `Call ${ctx.params.uuid} was not found`);
    if (parsed.data.action === 'hangup') {
      if (clock.now() - call.createdAt < settings.validation.hangupGuardMs) throw problem(400, 'The call cannot be hung up yet; retry after 2 seconds');
      engine.hangup(call);
    }
    // mute/earmuff/transfer are accepted but not simulated.
    ctx.status = 204;
  });

  const admin = new Router({ prefix: '/_sim' });
  admin.get('/config', (ctx) => {
    ctx.body = settings;
  });
  admin.put('/config', (ctx) => {
    const result = SimSettings.safeParse(deepMerge(settings, ctx.request.body ?? {}));
    if (!result.success) {
      throw new HttpError(400, 'invalid_config', 'invalid simulator settings', result.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message })));
    }
    settings = result.data;
    engine.refreshLimits();
    ctx.body = settings;
  });
  admin.post('/reset', async (ctx) => {
    await engine.reset();
    settings = initial;
    engine.refreshLimits();
    ctx.body = { ok: true };
  });
  admin.get('/calls', (ctx) => {
    const to = typeof ctx.query.to === 'string' ? ctx.query.to.replace(/^\+/, '') : undefined;
    ctx.body = { calls: engine.order.filter((c) => !to || c.to === to).map((c) => engine.groundTruth(c)) };
  });
  admin.get('/stats', (ctx) => {
    ctx.body = {
      calls_placed: engine.order.length,
      rejected_429: engine.stats.rejected_429,
      rejected_429_other: engine.stats.rejected_429_other,
      max_calls_in_rolling_second: engine.cpsWindow.maxInWindow,
      calls_per_number: engine.callsPerNumberObject(),
      requests: engine.stats.requests,
      create_requests: engine.stats.create_requests,
      create_5xx: engine.stats.create_5xx,
      timeouts_after_place: engine.stats.timeouts_after_place,
      calls_in_progress: engine.order.filter((c) => c.endedAt === undefined).length,
    };
  });

  const app = new Koa();
  app.on('error', (error: unknown) => logger?.error({ err: error }, 'unexpected error'));
  app.use(requestTiming(httpDuration));
  app.use(opsMiddleware({ registry, checks: {} }));
  app.use(async (ctx, next) => (ctx.path.startsWith('/v1') ? problemMiddleware()(ctx, next) : errorMiddleware((e) => logger?.error({ err: e }, 'unexpected error'))(ctx, next)));
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: '1mb' }));
  app.use(v1.routes()).use(v1.allowedMethods());
  app.use(admin.routes()).use(admin.allowedMethods());

  return {
    app,
    /** The settings in force. */
    settings: () => settings,
    /** Stop taking calls, let calls in progress run up to `graceMs`, then abort the rest. */
    async stop(options: { graceMs?: number } = {}): Promise<void> {
      stopping = true;
      for (const timer of hangTimers) clearTimeout(timer);
      hangTimers.clear();
      for (const socket of hung) socket.destroy();
      hung.clear();
      await engine.stop(options.graceMs ?? 0);
    },
  };
}
export type VoiceSim = ReturnType<typeof createVoiceSim>;
