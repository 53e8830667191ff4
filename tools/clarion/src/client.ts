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

/** Send a broadcast request over NATS and return the validated reply. */
export async function requestBroadcast(nc: NatsConnection, request: BroadcastRequestInput | unknown, timeoutMs = 60_000) {
  const reply = await nc.request(BROADCAST_REQUEST, JSON.stringify(request), { timeout: timeoutMs });
  return BroadcastReply.parse(reply.json());
}

/** Pause, resume or cancel a broadcast over NATS. */
export async function controlBroadcast(nc: NatsConnection, broadcastId: string, action: ControlAction, reason?: string) {
  const reply = await nc.request(BROADCAST_CONTROL, JSON.stringify({ broadcastId, action, reason }), { timeout: 10_000 });
  return reply.json<{ ok: boolean; error?: { message: string } }>();
}

export async function connect(natsUrl: string, name = 'clarion-cli'): Promise<NatsConnection> {
  return connectNats({ servers: natsUrl, name });
}
