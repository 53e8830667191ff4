import type { WebhookSigner } from './auth.js';
import type { HttpSend } from './http-send.js';

/** What happened to one webhook after all its attempts. */
export interface WebhookResult {
  ok: boolean;
  /** HTTP status of the last attempt (undefined when no response came). */
  status?: number | undefined;
  body?: string | undefined;
  attempts: number;
  error?: string | undefined;
}

/** Statuses after which Vonage retries an answer / NCCO-returning webhook. */
export const ANSWER_RETRY_STATUSES = new Set([429, 503, 504]);

export interface WebhookRequest {
  url: string;
  method: 'GET' | 'POST';
  payload: Record<string, unknown>;
  timeoutMs: number;
  attempts: number;
  /** Should this HTTP status be retried? (network errors and timeouts always are) */
  retryStatus: (status: number) => boolean;
}

export interface WebhookDeps {
  fetch: HttpSend;
  now: () => number;
  signer?: WebhookSigner | undefined;
  /** Aborts waiting when the simulator stops. */
  signal?: AbortSignal | undefined;
}

function withQuery(url: string, payload: Record<string, unknown>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(payload)) {
    if (v === undefined || v === null) continue;
    u.searchParams.append(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return u.toString();
}

/** Send a webhook (GET query or POST JSON), signed when a secret is set, with a deadline per attempt and retries. */
export async function sendWebhook(req: WebhookRequest, deps: WebhookDeps): Promise<WebhookResult> {
  const body = req.method === 'POST' ? JSON.stringify(req.payload) : '';
  const target = req.method === 'GET' ? withQuery(req.url, req.payload) : req.url;
  let last: WebhookResult = { ok: false, attempts: 0 };
  let connectionFailed = false;
  for (let attempt = 1; attempt <= req.attempts; attempt += 1) {
    if (deps.signal?.aborted) return { ...last, attempts: attempt - 1, error: 'simulator stopped' };
    const headers: Record<string, string> = { 'user-agent': 'voice-sim (Vonage stand-in)', accept: 'application/json' };
    if (req.method === 'POST') headers['content-type'] = 'application/json';
    if (deps.signer) headers.authorization = `Bearer ${await deps.signer(body, deps.now())}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`timed out after ${req.timeoutMs} ms`)), req.timeoutMs);
    const onStop = () => controller.abort(new Error('simulator stopped'));
    deps.signal?.addEventListener('abort', onStop, { once: true });
    try {
      // After a reset or refused connection, retry on a new one: pooled keep-alive sockets may all lead
      // to the replica that just died (as a client would, rather than reuse a connection it saw fail).
      const res = await deps.fetch(target, {
        method: req.method,
        headers,
        ...(req.method === 'POST' ? { body } : {}),
        signal: controller.signal,
        ...(connectionFailed ? { fresh: true } : {}),
      });
      const text = await res.text();
      last = { ok: res.ok, status: res.status, body: text, attempts: attempt };
      if (res.ok || !req.retryStatus(res.status)) return last;
    } catch (cause) {
      const reason = controller.signal.aborted ? String((controller.signal.reason as Error)?.message ?? 'aborted') : (cause as Error).message;
      last = { ok: false, attempts: attempt, error: reason };
      connectionFailed = true;
    } finally {
      clearTimeout(timer);
      deps.signal?.removeEventListener('abort', onStop);
    }
  }
  return last;
}
