import type { z } from 'zod';
import type { FieldError } from './messages.js';

/** A message or body that failed its schema: carries the field-level problems. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  readonly code = 'invalid_request';
  constructor(
    message: string,
    readonly details: FieldError[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Turn zod issues into `{ path, message }` pairs that name the field. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)',
    message: issue.message,
  }));
}

/** Parse with a schema or throw a ValidationError naming each bad field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = fieldErrors(result.error);
  const summary = details.map((d) => `${d.path}: ${d.message}`).join('; ');
  throw new ValidationError(`invalid ${what}: ${summary}`, details, { cause: result.error });
}

/** Decode JSON bytes, or throw a ValidationError that says the body is not JSON. */
export function decodeJson(data: Uint8Array | string, what: string): unknown {
  try {
    const text = typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data);
    return JSON.parse(text);
  } catch (cause) {
    throw new ValidationError(`invalid ${what}: not valid UTF-8 JSON`, [{ path: '(root)', message: 'not valid UTF-8 JSON' }], {
      cause,
    });
  }
}
