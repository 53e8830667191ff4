import Koa, { type Context } from 'koa';
import { Router } from '@koa/router';
import {
  CallEvent,
  KeypressEvent,
  callEventSubject,
  decodeContactVars,
  type ContactVars,
  keypressSubject,
  parseWith,
  type BroadcastSpec,
} from '@clarion/contracts';
import { HttpError, createMetrics, errorMiddleware, opsMiddleware, requestTiming, validate, Counter, type Registry } from '@clarion/http';
import { encodeJson, type JetStreamClient, type KV, type NatsConnection } from '@clarion/nats';
import type { Logger } from '@clarion/logging';
import { AttemptQuery, answerQuerystring, plainAnswerQuery } from './answer-query.js';
import {
  TEXTS,
  answerNcco,
  answerNccoJson,
  languageFor,
  messageActions,
  promptActions,
  sayNcco,
  type AttemptIds,
  type Ncco,
} from './ncco.js';
import { fastSeries } from './fast-series.js';
import { EventPayloadError, callEventMsgId, digitsOf, normaliseCallEvent } from './normalise.js';
import { readRawBody } from './raw-body.js';
import { signatureKey, verifyWebhookSignature } from './signature.js';
import { createSpecCache, type SpecCache } from './spec-cache.js';

/** Settings of the app (main.ts maps environment variables onto these). */
export interface WebhookSettings {
  /** Base URL the Voice API reaches this service at (for the input eventUrl). */
  publicUrl: string;
  /** When set, every webhook must be signed (JWT HS256 with payload_hash). */
  signatureSecret?: string | undefined;
  signatureMaxAgeSeconds?: number;
  maxBodyBytes?: number;
  publishTimeoutMs?: number;
  /** Retry an unacknowledged publish until this long has passed (0: one try); input webhooks use at most 4 s. */
  publishDeadlineMs?: number;
}

/** What the app needs; nothing is connected or read on import. */
export interface WebhookDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  /** The `broadcasts` KV bucket (id → BroadcastSpec). */
  broadcasts: KV;
  logger: Logger;
  settings: WebhookSettings;
  /** Epoch ms; injectable so tests control signature freshness. */
  clock?: () => number;
}

/** The Koa app plus what main.ts and tests need around it. */
export interface WebhookApp {
  app: Koa;
  registry: Registry;
  specs: SpecCache;
  /** Webhook requests being handled right now. */
  inFlight(): number;
  /** Stop taking webhooks (503), wait for in-flight ones, stop the KV watch. */
  close(): Promise<void>;
}

// Query keys that are ours, not part of a GET event payload.
const OWN_KEYS = new Set(['b', 'c', 'a', 'v', 'r']);

/** Times the message may be asked for again (repeat key) in one call before it ends with a goodbye. */
const MAX_PROMPT_ROUNDS = 3;

/** Wait between publish retries while JetStream does not answer (ms). */
const PUBLISH_RETRY_MS = 250;
/** Longest an input webhook holds its reply while retrying a publish (ms). */
const INPUT_DEADLINE_MS = 4000;

type Meaning = KeypressEvent['meaning'];

/** Build the webhook service: answer (NCCO), event and input webhooks, ops endpoints. */
export function createWebhookApp(deps: WebhookDeps): WebhookApp {
  const { js, nc, logger, settings } = deps;
  const clock = deps.clock ?? Date.now;
  const maxBodyBytes = settings.maxBodyBytes ?? 64 * 1024;
  const publishTimeoutMs = settings.publishTimeoutMs ?? 2000;
  const publishDeadlineMs = settings.publishDeadlineMs ?? 8000;
  const secret = settings.signatureSecret ? signatureKey(settings.signatureSecret) : undefined;
  const maxAgeSeconds = settings.signatureMaxAgeSeconds ?? 300;

  const { registry, httpDuration } = createMetrics('webhook');
  // Answers served on the fast path are counted here and added to their two counters whenever those
  // are read (a scrape), so the hot path bumps a number instead of hashing label sets per request.
  let fastAnswers = 0;
  const addFastAnswers = () => {
    if (fastAnswers === 0) return;
    requests.inc({ route: '/webhooks/answer', status: '200' }, fastAnswers);
    answers.inc({ result: 'message' }, fastAnswers);
    fastAnswers = 0;
  };
  const requests = new Counter({
    name: 'webhook_requests_total',
    help: 'Webhook requests by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
    collect: addFastAnswers,
  });
  const published = new Counter({
    name: 'webhook_events_published_total',
    help: 'Events stored by JetStream, by kind and whether the stream saw them before',
    labelNames: ['kind', 'duplicate'],
    registers: [registry],
  });
  const publishFailures = new Counter({
    name: 'webhook_publish_failures_total',
    help: 'Publishes that JetStream did not acknowledge (answered 503)',
    registers: [registry],
  });
  const refused = new Counter({
    name: 'webhook_refused_total',
    help: 'Webhooks refused by the signature check, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const answers = new Counter({
    name: 'webhook_answers_total',
    help: 'Answer NCCOs served, by result',
    labelNames: ['result'],
    registers: [registry],
    collect: addFastAnswers,
  });

  const specs = createSpecCache(deps.broadcasts, {
    onEvent: (event) => {
      if (event.kind === 'invalid') logger.error({ broadcastId: event.broadcastId, reason: event.reason }, 'invalid broadcast spec in KV');
      else logger.warn({ err: event.error }, 'broadcasts watch failed; restarting');
    },
  });

  let draining = false;
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const attemptIds = (ctx: Context): AttemptIds => {
    const q = ctx.query;
    return validate(AttemptQuery, { b: q.b, c: q.c, a: q.a }, 'webhook URL (b, c, a)');
  };

  /** Read the raw body (POST) and check the signature over exactly those bytes. */
  const admit = async (ctx: Context): Promise<Uint8Array> => {
    const raw = ctx.method === 'GET' || ctx.method === 'HEAD' ? new Uint8Array(0) : await readRawBody(ctx.req, maxBodyBytes);
    if (secret) {
      const check = await verifyWebhookSignature(ctx.get('authorization') || undefined, raw, {
        secret,
        maxAgeSeconds,
        now: clock,
      });
      if (!check.ok) {
        refused.inc({ reason: check.reason });
        logger.warn({ path: ctx.path, reason: check.reason }, 'webhook refused');
        throw new HttpError(401, 'unauthorized', check.message, { reason: check.reason });
      }
    }
    return raw;
  };

  /** Parse a POST body: JSON (any casing, any parameters) or a form; GET uses the query string. */
  const payloadOf = (ctx: Context, raw: Uint8Array): { payload: Record<string, unknown>; key: string } => {
    if (ctx.method === 'GET') {
      const payload: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(ctx.query)) if (!OWN_KEYS.has(k)) payload[k] = Array.isArray(v) ? v[0] : v;
      return { payload, key: ctx.querystring };
    }
    if (raw.length === 0) throw new HttpError(400, 'empty_body', 'the request body is empty; a JSON event was expected');
    const mime = (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new HttpError(400, 'invalid_body', 'the request body is not valid UTF-8');
    }
    let value: unknown;
    if (mime === 'application/x-www-form-urlencoded') {
      value = Object.fromEntries(new URLSearchParams(text));
    } else if (mime === '' || mime === 'application/json' || mime.endsWith('+json') || mime === 'text/json') {
      try {
        value = JSON.parse(text);
      } catch {
        throw new HttpError(400, 'invalid_json', 'the request body is not valid JSON');
      }
    } else {
      throw new HttpError(415, 'unsupported_media_type', `content type ${mime} is not supported; send application/json`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new HttpError(400, 'invalid_event', 'the request body must be a JSON object');
    }
    return { payload: value as Record<string, unknown>, key: text };
  };

  /** Publish and wait for JetStream's ack; any failure becomes 503 so the Voice API retries. */
  /**
   * Publish and wait for JetStream's ack, retrying (the message id makes a retry harmless) until
   * `deadlineMs` has passed; then 503 so the Voice API retries. Vonage retries an event only once,
   * so holding the request across a short NATS restart is what keeps the event.
   */
  const publish = async (subject: string, kind: string, message: unknown, msgID: string, deadlineMs = publishDeadlineMs): Promise<void> => {
    const data = encodeJson(message);
    const giveUpAt = Date.now() + deadlineMs;
    for (let tries = 1; ; tries += 1) {
      try {
        const ack = await js.publish(subject, data, { msgID, timeout: publishTimeoutMs });
        published.inc({ kind, duplicate: String(ack.duplicate) });
        if (tries > 1) logger.info({ subject, tries }, 'event stored after retrying');
        return;
      } catch (cause) {
        const left = giveUpAt - Date.now();
        if (left > 0 && !draining) {
          await new Promise((resolve) => setTimeout(resolve, Math.min(PUBLISH_RETRY_MS, left)));
          continue;
        }
        publishFailures.inc();
        logger.error({ err: cause, subject, tries }, 'event publish failed');
        throw new HttpError(503, 'unavailable', 'the event could not be stored; retry later', undefined, { cause });
      }
    }
  };

  const toCallEvent = (payload: Record<string, unknown>, ids: AttemptIds, status?: string): CallEvent => {
    let event: CallEvent;
    try {
      event = normaliseCallEvent(payload, ids, new Date(clock()));
    } catch (error) {
      if (error instanceof EventPayloadError) throw new HttpError(400, error.code, error.message);
      throw error;
    }
    if (status !== undefined) event.status = status;
    return parseWith(CallEvent, event, 'call event');
  };

  const specFor = async (ids: AttemptIds): Promise<BroadcastSpec | undefined> => specs.peek(ids.b) ?? (await specs.get(ids.b));

  const contactOf = (v: string | undefined, ids: AttemptIds): { contact: ContactVars; v: string | undefined } => {
    const contact = decodeContactVars(v);
    if (contact === undefined) {
      logger.warn({ broadcastId: ids.b, contactId: ids.c }, 'undecodable contact variables (v); speaking without them');
      return { contact: {}, v: undefined };
    }
    return { contact, v };
  };

  const queryV = (ctx: Context): string | undefined => (typeof ctx.query.v === 'string' ? ctx.query.v : undefined);

  const apology = (ids: AttemptIds, why: string): Ncco => {
    answers.inc({ result: 'apology' });
    logger.error({ broadcastId: ids.b, contactId: ids.c, attempt: ids.a }, `answer webhook: ${why}; apology served`);
    return sayNcco(TEXTS.apology);
  };

  const router = new Router();

  // Answer: the hot path. With the spec cached and no signature there is no await on it.
  const answer = async (ctx: Context): Promise<void> => {
    if (secret || ctx.method === 'POST') await admit(ctx);
    const ids = attemptIds(ctx);
    const spec = specs.peek(ids.b) ?? (await specs.get(ids.b).catch(() => undefined));
    if (!spec) {
      ctx.body = apology(ids, 'unknown broadcast');
      return;
    }
    const { contact, v } = contactOf(queryV(ctx), ids);
    answers.inc({ result: 'message' });
    ctx.body = answerNcco(spec, contact, ids, settings.publicUrl, v);
  };
  router.get('/webhooks/answer', answer);
  router.post('/webhooks/answer', answer);

  const event = async (ctx: Context): Promise<void> => {
    const raw = await admit(ctx);
    const ids = attemptIds(ctx);
    const { payload, key } = payloadOf(ctx, raw);
    const callEvent = toCallEvent(payload, ids);
    await publish(callEventSubject(ids.b), 'call', callEvent, callEventMsgId(callEvent, key));
    ctx.status = 204;
  };
  router.get('/webhooks/event', event);
  router.post('/webhooks/event', event);

  const input = async (ctx: Context): Promise<void> => {
    const raw = await admit(ctx);
    const ids = attemptIds(ctx);
    const { payload, key } = payloadOf(ctx, raw);
    const callEvent = toCallEvent(payload, ids, 'input');
    const spec = await specFor(ids).catch(() => undefined);
    const digits = digitsOf(payload);
    const meaning = meaningOf(spec, digits);
    const keypress = parseWith(
      KeypressEvent,
      {
        kind: 'keypress',
        broadcastId: ids.b,
        contactId: ids.c,
        attempt: ids.a,
        uuid: callEvent.uuid,
        ...(typeof payload.to === 'string' && payload.to !== '' ? { number: /^\d+$/.test(payload.to) ? `+${payload.to}` : payload.to } : {}),
        meaning,
        digits,
        at: callEvent.timestamp,
      },
      'keypress event',
    );
    const msgID = callEventMsgId(callEvent, key);
    await Promise.all([
      // The input webhook must answer with an NCCO within the Voice API's read timeout (5 s).
      publish(callEventSubject(ids.b), 'call', callEvent, msgID, Math.min(publishDeadlineMs, INPUT_DEADLINE_MS)),
      publish(keypressSubject(ids.b), 'keypress', keypress, `kp-${msgID}`, Math.min(publishDeadlineMs, INPUT_DEADLINE_MS)),
    ]);
    ctx.body = spec ? inputReply(ctx, spec, ids, meaning) : sayNcco(TEXTS.goodbye);
  };
  router.post('/webhooks/input', input);
  router.get('/webhooks/input', input);

  /** What to say after a key: thanks, the message again, goodbye, or one more prompt. */
  const inputReply = (ctx: Context, spec: BroadcastSpec, ids: AttemptIds, meaning: Meaning): Ncco => {
    const { contact, v } = contactOf(queryV(ctx), ids);
    const language = languageFor(spec, contact);
    const style = spec.request.message.style ?? 0;
    const round = Number(ctx.query.r ?? 0) || 0;
    switch (meaning) {
      case 'acknowledge':
        return sayNcco(TEXTS.confirmed, language, style);
      case 'opt_out':
        return sayNcco(TEXTS.optedOut, language, style);
      case 'repeat':
        // Each repeat counts a round: a person (or a stuck key) asking again and again must not keep
        // the call open for ever, so the last repeat ends with a goodbye instead of the prompt.
        return round < MAX_PROMPT_ROUNDS
          ? [...messageActions(spec, contact), ...promptActions(spec, contact, ids, settings.publicUrl, v, round + 1)]
          : [...messageActions(spec, contact), ...sayNcco(TEXTS.goodbye, language, style)];
      default: {
        // A wrong key or silence gets the prompt once more, then a goodbye (no endless loop);
        // without a prompt (acknowledgement removed from the spec) goodbye, never an empty NCCO.
        const again = round < 1 ? promptActions(spec, contact, ids, settings.publicUrl, v, round + 1) : [];
        return again.length > 0 ? again : sayNcco(TEXTS.goodbye, language, style);
      }
    }
  };

  const app = new Koa();
  // The answer webhook is the hot path (the callee is listening to silence while we answer). Unsigned
  // GETs with a cached spec and well-formed ids are answered by this first middleware, synchronously:
  // no router, no async middleware in front, counters and the duration histogram bumped as plain numbers
  // (added to prom-client's when scraped), the NCCO's constant JSON cached per spec. Anything else
  // (signature, POST, bad ids, cache miss, draining) takes the full chain.
  const answerDuration = fastSeries(httpDuration, { method: 'GET', route: '/webhooks/answer', status: '200' });
  app.use((ctx, next) => {
    const { method, url } = ctx.req;
    if (secret || draining || method !== 'GET') return next();
    const querystring = answerQuerystring(url);
    if (querystring === undefined) return next();
    const started = process.hrtime();
    const query = plainAnswerQuery(querystring);
    const spec = query ? specs.peek(query.ids.b) : undefined;
    if (!query || !spec) return next();
    const { contact, v } = contactOf(query.v, query.ids);
    // Same bytes and headers as `ctx.body = answerNcco(...)`, written in one writeHead: no Koa JSON,
    // mime-type, body-setter or header-by-header work.
    const body = answerNccoJson(spec, contact, query.ids, settings.publicUrl, v);
    ctx.respond = false;
    ctx.res.writeHead(200, ['Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body))]);
    ctx.res.end(body);
    fastAnswers++;
    const [seconds, nanoseconds] = process.hrtime(started);
    answerDuration.observe(seconds + nanoseconds / 1e9);
    return Promise.resolve();
  });
  // Timing and counting sit outside the error middleware so they see the final status.
  app.use(requestTiming(httpDuration));
  app.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      if (ctx.path.startsWith('/webhooks/')) {
        // The matched route, not the raw path, keeps the label set bounded.
        const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
        requests.inc({ route: String(route), status: String(ctx.status) });
      }
    }
  });
  app.use(errorMiddleware((error, ctx) => logger.error({ err: error, path: ctx.path }, 'unexpected error')));
  app.use(
    opsMiddleware({
      registry,
      checks: {
        nats: () => !nc.isClosed() && withTimeout(nc.rtt().then(() => true), 1000),
        broadcasts: () => withTimeout(deps.broadcasts.status().then(() => true), 1000),
      },
    }),
  );
  app.use(async (ctx, next) => {
    if (!ctx.path.startsWith('/webhooks/')) return next();
    if (draining) throw new HttpError(503, 'shutting_down', 'the service is shutting down; retry');
    inFlight++;
    try {
      await next();
    } finally {
      if (--inFlight === 0) idle?.();
    }
  });
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));

  return {
    app,
    registry,
    specs,
    inFlight: () => inFlight,
    async close() {
      draining = true;
      if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
      await specs.close();
    },
  };
}

/** Interpret the digits against the broadcast's acknowledgement keys. */
export function meaningOf(spec: BroadcastSpec | undefined, digits: string | null): Meaning {
  if (digits === null) return 'none';
  const ack = spec?.request.acknowledgement;
  const key = ack?.key ?? '1';
  if (digits.includes(key)) return 'acknowledge';
  if (ack?.optOutKey !== undefined && digits.includes(ack.optOutKey)) return 'opt_out';
  if (ack?.repeatKey !== undefined && digits.includes(ack.repeatKey)) return 'repeat';
  return 'other';
}

/** Resolve false when `promise` does not settle in time (a readiness probe must answer quickly). */
function withTimeout(promise: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([promise.catch(() => false), timeout]).finally(() => clearTimeout(timer));
}
