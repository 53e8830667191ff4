import { errorForStatus, VoiceApiError } from './errors.js';
import { createTokenSource } from './token.js';

/** A phone endpoint; `number` is E.164 digits without `+`. */
export interface PhoneEndpoint {
  type: 'phone';
  number: string;
  dtmfAnswer?: string;
}

/** The Vonage create-call body (snake_case, as the API takes it). */
export interface CreateCallBody {
  to: PhoneEndpoint[];
  from?: PhoneEndpoint;
  random_from_number?: boolean;
  answer_url?: string[];
  answer_method?: 'GET' | 'POST';
  event_url?: string[];
  event_method?: 'GET' | 'POST';
  ncco?: unknown[];
  machine_detection?: 'continue' | 'hangup';
  ringing_timer?: number;
  length_timer?: number;
}

/** The 201 reply of `POST /v1/calls`. */
export interface CreatedCall {
  uuid: string;
  status: string;
  direction: string;
  conversation_uuid: string;
}

/** The part of `GET /v1/calls/{uuid}` Clarion reads (the rest is kept in `raw`). */
export interface CallInfo {
  uuid: string;
  /** Vonage call status: started, ringing, answered, completed, busy, failed, rejected, unanswered, timeout, cancelled… */
  status: string;
  /** Set once the call was answered. */
  startTime?: string;
  endTime?: string;
  raw: Record<string, unknown>;
}

export interface VoiceClientOptions {
  baseUrl: string;
  applicationId: string;
  /** PEM private key of the application (PKCS#8 or PKCS#1). */
  privateKey: string;
  fetch?: typeof fetch;
  /** Epoch ms; injectable so tests control token reuse. */
  clock?: () => number;
  /** Whole-request timeout; a timeout after sending is ambiguous. Default 10 s. */
  timeoutMs?: number;
  /** How long a minted JWT is reused (ms). Default 30 s. */
  tokenReuseMs?: number;
}

export interface VoiceClient {
  /** `POST /v1/calls`; throws VoiceApiError (check `ambiguous` before retrying). */
  createCall(body: CreateCallBody, signal?: AbortSignal): Promise<CreatedCall>;
  /** `GET /v1/calls/{uuid}`; throws VoiceApiError (`not_found` when the provider does not know the call). */
  getCall(uuid: string, signal?: AbortSignal): Promise<CallInfo>;
  /** Make sure a signed token is ready, so a paced request is not delayed by signing. */
  prepare(): Promise<void>;
  /**
   * Sign a token and open a connection (`HEAD /`, any answer is fine) so the first paced create
   * does not pay for key import, TLS and HTTP stack start-up. Never throws.
   */
  warmUp(): Promise<void>;
}

/** Strip `+`/spaces: the Voice API wants digits only. */
export const toVoiceNumber = (e164: string): string => e164.replace(/[^\d]/g, '');

/** Create a Voice API client that signs each request with a (reused) RS256 application JWT. */
export function createVoiceClient(options: VoiceClientOptions): VoiceClient {
  const doFetch = options.fetch ?? fetch;
  const clock = options.clock ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const token = createTokenSource({
    applicationId: options.applicationId,
    privateKey: options.privateKey,
    clock,
    ...(options.tokenReuseMs === undefined ? {} : { reuseMs: options.tokenReuseMs }),
  });
  const url = new URL('/v1/calls', options.baseUrl).toString();

  const sign = async (): Promise<string> => {
    try {
      return await token();
    } catch (cause) {
      throw new VoiceApiError('unauthorized', `cannot sign the Voice API token: ${(cause as Error).message}`, undefined, false, { cause });
    }
  };

  return {
    async prepare() {
      await token();
    },
    async warmUp() {
      await token().catch(() => undefined);
      try {
        const response = await doFetch(new URL('/', options.baseUrl).toString(), { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs) });
        await response.arrayBuffer().catch(() => undefined);
      } catch {
        // Warming is best effort; the first create will connect by itself.
      }
    },
    async getCall(uuid, signal) {
      const bearer = await sign();
      const timeout = AbortSignal.timeout(timeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      let response: Response;
      let text: string;
      try {
        response = await doFetch(`${url}/${encodeURIComponent(uuid)}`, {
          method: 'GET',
          headers: { authorization: `Bearer ${bearer}`, accept: 'application/json' },
          signal: combined,
        });
        text = await response.text();
      } catch (cause) {
        // A read is never ambiguous: nothing changes at the provider.
        const error = classifyFetchFailure(cause, timeout.aborted, timeoutMs);
        throw new VoiceApiError(error.code, error.message, undefined, false, { cause });
      }
      const parsed = parseJson(text);
      if (response.status !== 200) {
        const error = errorForStatus(response.status, parsed ?? text);
        throw new VoiceApiError(error.code, error.message, error.status, false, { body: error.body });
      }
      const v = parsed as Record<string, unknown> | undefined;
      if (!v || typeof v !== 'object' || typeof v.status !== 'string') {
        throw new VoiceApiError('unexpected_response', `Voice API replied ${response.status} without a call status`, response.status, false, {
          body: parsed ?? text,
        });
      }
      return {
        uuid: typeof v.uuid === 'string' ? v.uuid : uuid,
        status: v.status,
        ...(typeof v.start_time === 'string' ? { startTime: v.start_time } : {}),
        ...(typeof v.end_time === 'string' ? { endTime: v.end_time } : {}),
        raw: v,
      };
    },
    async createCall(body, signal) {
      const bearer = await sign();
      const timeout = AbortSignal.timeout(timeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      let response: Response;
      try {
        response = await doFetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(body),
          signal: combined,
        });
      } catch (cause) {
        throw classifyFetchFailure(cause, timeout.aborted, timeoutMs);
      }
      let text: string;
      try {
        text = await response.text();
      } catch (cause) {
        // The provider answered with a status but the body broke off: trust the status.
        if (response.status === 201 || response.status === 200) {
          throw new VoiceApiError('network', 'Voice API reply was cut off after success status', response.status, true, { cause });
        }
        throw errorForStatus(response.status, undefined);
      }
      const parsed = parseJson(text);
      if (response.status !== 201 && response.status !== 200) throw errorForStatus(response.status, parsed ?? text);
      if (!isCreatedCall(parsed)) {
        // A 2xx means the call was placed even if the body is unreadable.
        throw new VoiceApiError('unexpected_response', `Voice API replied ${response.status} without a call uuid`, response.status, true, {
          body: parsed ?? text,
        });
      }
      return {
        uuid: parsed.uuid,
        status: parsed.status,
        direction: typeof parsed.direction === 'string' ? parsed.direction : 'outbound',
        conversation_uuid: typeof parsed.conversation_uuid === 'string' ? parsed.conversation_uuid : '',
      };
    },
  };
}

function classifyFetchFailure(cause: unknown, timedOut: boolean, timeoutMs: number): VoiceApiError {
  if (timedOut) {
    return new VoiceApiError('timeout', `Voice API did not answer within ${timeoutMs} ms`, undefined, true, { cause });
  }
  const code = errorCode(cause);
  // Refused / DNS failures happen before anything was sent: the call surely was not placed.
  const beforeSend = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH';
  if ((cause as Error)?.name === 'AbortError') {
    return new VoiceApiError('network', 'Voice API request aborted', undefined, true, { cause });
  }
  return new VoiceApiError(
    'network',
    `Voice API request failed${code ? ` (${code})` : ''}: ${(cause as Error)?.message ?? String(cause)}`,
    undefined,
    !beforeSend,
    { cause },
  );
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('E')) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isCreatedCall(value: unknown): value is CreatedCall {
  const v = value as Partial<CreatedCall> | undefined;
  return typeof v?.uuid === 'string' && v.uuid.length > 0 && typeof v.status === 'string';
}
