import { connectNats, type NatsConnection } from '@clarion/nats';
import {
  BROADCAST_CONTROL,
  BROADCAST_REQUEST,
  BroadcastReply,
  type BroadcastRequestInput,
  type ControlAction,
} from '@clarion/contracts';

/** A REST call failed; carries the service's JSON error. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
  }
}

/** A tiny JSON client for the contacts and reporter REST APIs. */
export function restClient(baseUrl: string, token: string) {
  const call = async <T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': contentType }),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    const parsed = text === '' ? undefined : safeJson(text);
    if (!response.ok) {
      const message =
        (parsed as { error?: { message?: string } } | undefined)?.error?.message ?? `${method} ${path} failed`;
      throw new ApiError(response.status, parsed, `${message} (HTTP ${response.status})`);
    }
    return parsed as T;
  };
  return {
    get: <T>(path: string) => call<T>('GET', path),
    post: <T>(path: string, body?: unknown, contentType?: string) => call<T>('POST', path, body, contentType),
    patch: <T>(path: string, body: unknown) => call<T>('PATCH', path, body),
    del: <T>(path: string) => call<T>('DELETE', path),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** No reply in time to a NATS request (the request itself may still have been carried out). */
export class NatsReplyTimeout extends Error {
  override readonly name = 'NatsReplyTimeout';
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply on ${subject} within ${Math.round(timeoutMs / 1000)} s`);
  }
}

/** No connection to NATS within the connect timeout. */
export class NatsUnreachable extends Error {
  override readonly name = 'NatsUnreachable';
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    super(`no connection within ${Math.round(timeoutMs / 1000)} s`);
  }
}

/** How long a broadcast request may take: contacts replies once the whole audience is enqueued. */
export const BROADCAST_REPLY_TIMEOUT_MS = 120_000;

async function request(nc: NatsConnection, subject: string, body: unknown, timeoutMs: number) {
  try {
    return await nc.request(subject, JSON.stringify(body), { timeout: timeoutMs });
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    if ((error as Error).name === 'TimeoutError' || (cause instanceof Error && cause.name === 'TimeoutError')) throw new NatsReplyTimeout(subject, timeoutMs);
    throw error;
  }
}

/** Send a broadcast request over NATS and return the validated reply. */
export async function requestBroadcast(nc: NatsConnection, body: BroadcastRequestInput | unknown, timeoutMs = BROADCAST_REPLY_TIMEOUT_MS) {
  const reply = await request(nc, BROADCAST_REQUEST, body, timeoutMs);
  return BroadcastReply.parse(reply.json());
}

/** Pause, resume or cancel a broadcast over NATS. */
export async function controlBroadcast(nc: NatsConnection, broadcastId: string, action: ControlAction, reason?: string, timeoutMs = 10_000) {
  const reply = await request(nc, BROADCAST_CONTROL, { broadcastId, action, reason }, timeoutMs);
  return reply.json<{ ok: boolean; error?: { code?: string; message: string } }>();
}

/**
 * Connect for one command. connectNats waits for a first connection for ever (right for a service);
 * a command gives up after `timeoutMs` so a stopped Clarion or a wrong URL is reported, not waited on.
 */
export async function connect(natsUrl: string, name = 'clarion-cli', timeoutMs = 5_000): Promise<NatsConnection> {
  const pending = connectNats({ servers: natsUrl, name });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NatsUnreachable(natsUrl, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([pending, timeout]);
  } catch (error) {
    // A connection that comes up after we gave up is closed at once; one that never does is dropped with the process.
    pending.then((nc) => nc.close(), () => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
