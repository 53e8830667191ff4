/** Stable codes of Voice API failures; callers branch on these, never on messages. */
export type VoiceApiErrorCode =
  | 'rate_limited'
  | 'unauthorized'
  | 'forbidden'
  | 'payment_required'
  | 'invalid_request'
  | 'not_found'
  | 'server_error'
  | 'timeout'
  | 'network'
  | 'unexpected_response';

/** A failed Voice API request. `ambiguous` is true when the call MAY have been placed. */
export class VoiceApiError extends Error {
  override readonly name = 'VoiceApiError';
  constructor(
    readonly code: VoiceApiErrorCode,
    message: string,
    readonly status: number | undefined,
    readonly ambiguous: boolean,
    options?: { cause?: unknown; body?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.body = options?.body;
  }
  /** The parsed error body from the provider, when there was one. */
  readonly body: unknown;
}

/** Map an HTTP status to a code; 5xx is ambiguous because the provider may have acted. */
export function errorForStatus(status: number, body: unknown): VoiceApiError {
  const detail = describeBody(body);
  const message = `Voice API answered ${status}${detail ? `: ${detail}` : ''}`;
  if (status === 429) return new VoiceApiError('rate_limited', message, status, false, { body });
  if (status === 401) return new VoiceApiError('unauthorized', message, status, false, { body });
  if (status === 403) return new VoiceApiError('forbidden', message, status, false, { body });
  if (status === 402) return new VoiceApiError('payment_required', message, status, false, { body });
  if (status === 404) return new VoiceApiError('not_found', message, status, false, { body });
  if (status >= 500) return new VoiceApiError('server_error', message, status, true, { body });
  return new VoiceApiError('invalid_request', message, status, false, { body });
}

function describeBody(body: unknown): string {
  if (!body || typeof body !== 'object') return typeof body === 'string' ? body.slice(0, 300) : '';
  const b = body as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of ['title', 'error_title', 'detail']) {
    if (typeof b[key] === 'string') parts.push(b[key]);
  }
  if (Array.isArray(b.invalid_parameters)) {
    for (const p of b.invalid_parameters as { name?: unknown; reason?: unknown }[]) {
      parts.push(`${String(p.name)}: ${String(p.reason)}`);
    }
  }
  return parts.join('; ').slice(0, 500);
}
