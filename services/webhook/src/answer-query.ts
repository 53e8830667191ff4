import { Id } from '@clarion/contracts';
import { z } from 'zod';
import type { AttemptIds } from './ncco.js';

/** The attempt identity every webhook URL carries (`b`, `c`, `a`): the schema that decides. */
export const AttemptQuery = z.object({
  b: Id,
  c: Id,
  a: z.coerce.number({ message: 'must be an attempt number' }).int().min(1).max(100),
});

// Narrower than AttemptQuery on purpose: what these accept, the schema accepts with the same values.
const PLAIN_ID = /^[A-Za-z0-9_-]{1,64}$/;
const PLAIN_ATTEMPT = /^(?:[1-9][0-9]?|100)$/;

/**
 * The ids and `v` of an answer URL's query string when they are written plainly (each once, no
 * percent-encoding or `+`, ids as the schema wants), read without building the whole query object
 * or running the schema; undefined otherwise, and the caller takes the full, validating path.
 * Other parameters (Vonage's `to`, `from`, `uuid`, …) are skipped unread.
 */
export function plainAnswerQuery(querystring: string): { ids: AttemptIds; v: string | undefined } | undefined {
  let b: string | undefined;
  let c: string | undefined;
  let a: string | undefined;
  let v: string | undefined;
  let start = 0;
  while (start <= querystring.length) {
    let end = querystring.indexOf('&', start);
    if (end < 0) end = querystring.length;
    if (end > start) {
      let eq = querystring.indexOf('=', start);
      if (eq < 0 || eq > end) eq = end;
      const key = querystring.slice(start, eq);
      // An encoded key might decode to one of ours: leave it to the full parser.
      if (key.includes('%') || key.includes('+')) return undefined;
      if (key.length === 1 && 'bcav'.includes(key)) {
        const value = eq < end ? querystring.slice(eq + 1, end) : '';
        if (value.includes('%') || value.includes('+')) return undefined;
        if (key === 'b') {
          if (b !== undefined) return undefined;
          b = value;
        } else if (key === 'c') {
          if (c !== undefined) return undefined;
          c = value;
        } else if (key === 'a') {
          if (a !== undefined) return undefined;
          a = value;
        } else {
          if (v !== undefined) return undefined;
          v = value;
        }
      }
    }
    start = end + 1;
  }
  if (b === undefined || c === undefined || a === undefined) return undefined;
  if (!PLAIN_ID.test(b) || !PLAIN_ID.test(c) || !PLAIN_ATTEMPT.test(a)) return undefined;
  return { ids: { b, c, a: Number(a) }, v };
}
