import type Koa from 'koa';
import type { Context, Middleware } from 'koa';
import { Registry, collectDefaultMetrics, Histogram, Counter } from 'prom-client';
import { timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';

/** An error that becomes an HTTP response `{ error: { code, message, details } }`. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const badRequest = (message: string, details?: unknown) => new HttpError(400, 'invalid_request', message, details);
export const notFound = (what: string) => new HttpError(404, 'not_found', `${what} not found`);
export const conflict = (message: string, details?: unknown) => new HttpError(409, 'conflict', message, details);

interface CodedError {
  name?: string;
  status?: number;
  statusCode?: number;
  code?: string;
  message?: string;
  details?: unknown;
  expose?: boolean;
  type?: string;
}

/** Turns every thrown error into JSON; unexpected errors become 500 without leaking internals. */
export function errorMiddleware(onUnexpected?: (error: unknown, ctx: Context) => void): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new HttpError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (raw) {
      const error = raw as CodedError;
      if (raw instanceof HttpError) {
        ctx.status = raw.status;
        ctx.body = { error: { code: raw.code, message: raw.message, details: raw.details } };
      } else if (error?.name === 'ValidationError' && Array.isArray(error.details)) {
        ctx.status = 400;
        ctx.body = { error: { code: error.code ?? 'invalid_request', message: error.message, details: error.details } };
      } else if ((error?.status ?? error?.statusCode ?? 500) < 500 && error?.expose !== false) {
        // Errors raised by koa/bodyparser (bad JSON, too large, wrong type) carry their status.
        ctx.status = error.status ?? error.statusCode ?? 400;
        ctx.body = {
          error: { code: bodyErrorCode(error, ctx.status), message: error.message ?? 'bad request' },
        };
      } else {
        onUnexpected?.(raw, ctx);
        ctx.status = 500;
        ctx.body = { error: { code: 'internal', message: 'internal error' } };
      }
    }
  };
}

function bodyErrorCode(error: CodedError, status: number): string {
  if (status === 413) return 'body_too_large';
  if (status === 415) return 'unsupported_media_type';
  if (error.type === 'entity.parse.failed') return 'invalid_json';
  return typeof error.code === 'string' && /^[a-z_]+$/.test(error.code) ? error.code : 'bad_request';
}

/** Validate a body, query or params object against a schema or throw 400 naming each field. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, what = 'request body'): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)',
    message: issue.message,
  }));
  throw new HttpError(400, 'invalid_request', `invalid ${what}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
}

/**
 * Bearer-token guard for the REST APIs. Paths for which `isPublic` is true pass without a token.
 * Accepts `Authorization: Bearer <token>` or `?token=` (for EventSource and download links).
 */
export function requireToken(token: string, isPublic: (path: string) => boolean = () => false): Middleware {
  const expected = Buffer.from(token);
  return async (ctx, next) => {
    if (isPublic(ctx.path)) return next();
    const header = ctx.get('authorization');
    const given = header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : String(ctx.query.token ?? '');
    const candidate = Buffer.from(given);
    if (candidate.length !== expected.length || !timingSafeEqual(candidate, expected)) {
      throw new HttpError(401, 'unauthorized', 'a valid API token is required (Authorization: Bearer <token>)');
    }
    return next();
  };
}

/** Readiness checks: each returns true when its dependency is reachable. */
export type ReadinessChecks = Record<string, () => Promise<boolean> | boolean>;

/** `/healthz` (process alive), `/readyz` (dependencies reachable) and `/metrics` (Prometheus). */
export function opsMiddleware(options: { registry: Registry; checks: ReadinessChecks }): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET') return next();
    if (ctx.path === '/healthz') {
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path === '/readyz') {
      const results: Record<string, boolean> = {};
      for (const [name, check] of Object.entries(options.checks)) {
        try {
          results[name] = await check();
        } catch {
          results[name] = false;
        }
      }
      const ready = Object.values(results).every(Boolean);
      ctx.status = ready ? 200 : 503;
      ctx.body = { status: ready ? 'ready' : 'not_ready', checks: results };
      return;
    }
    if (ctx.path === '/metrics') {
      ctx.type = options.registry.contentType;
      ctx.body = await options.registry.metrics();
      return;
    }
    return next();
  };
}

/** A metrics registry with the process defaults and an HTTP request histogram. */
export function createMetrics(service: string): { registry: Registry; httpDuration: Histogram<string> } {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  return { registry, httpDuration };
}

/** Records each request's duration under its matched route (or `unmatched`). */
export function requestTiming(histogram: Histogram<string>): Middleware {
  return async (ctx, next) => {
    const end = histogram.startTimer();
    try {
      await next();
    } finally {
      const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      end({ method: ctx.method, route: String(route), status: String(ctx.status) });
    }
  };
}

/** Listen on a port and resolve with the server once it is accepting connections. */
export async function listen(app: Koa, port: number, host = '0.0.0.0') {
  const { createServer } = await import('node:http');
  const server = createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export { Registry, Counter, Histogram };
export { onShutdown, closeServer, logShutdownEvents, type ShutdownLog, type ShutdownStep, type ShutdownEvent, type ShutdownOptions, type ShutdownHost } from './shutdown.js';
