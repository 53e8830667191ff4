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

const ANSWER_PREFIX = '/webhooks/answer?';
// Characters that make Koa's URL parser (parseurl) fall back to url.parse, which may read the URL differently.
const UNUSUAL_URL = /[\t\n\f\r #\u00a0\ufeff]/;

/**
 * The query string of an answer webhook's URL, read straight from the request line without building
 * Koa's parsed URL: when this returns a string, Koa's `ctx.path` is `/webhooks/answer` and its
 * `ctx.querystring` is that string. Undefined for any other path, no query, or a URL that Koa's parser
 * (parseurl) would hand to url.parse (the full chain then decides).
 */
export function answerQuerystring(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith(ANSWER_PREFIX)) return undefined;
  const querystring = url.slice(ANSWER_PREFIX.length);
  return UNUSUAL_URL.test(querystring) ? undefined : querystring;
}

const AMP = 0x26;
const KEY_A = 0x61;
const KEY_B = 0x62;
const KEY_C = 0x63;
const KEY_V = 0x76;

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
  const length = querystring.length;
  // The next `%` and `+` at or after the segment being read (-1: none left), found once and moved
  // on as the scan passes them rather than searched for in every key and value.
  let percent = querystring.indexOf('%');
  let plus = querystring.indexOf('+');
  let start = 0;
  while (start < length) {
    let end = querystring.indexOf('&', start);
    if (end < 0) end = length;
    if (end > start) {
      let eq = querystring.indexOf('=', start);
      if (eq < 0 || eq > end) eq = end;
      if (percent >= 0 && percent < start) percent = querystring.indexOf('%', start);
      if (plus >= 0 && plus < start) plus = querystring.indexOf('+', start);
      // An encoded key might decode to one of ours: leave it to the full parser.
      if ((percent >= 0 && percent < eq) || (plus >= 0 && plus < eq)) return undefined;
      const key = eq === start + 1 ? querystring.charCodeAt(start) : AMP;
      if (key === KEY_B || key === KEY_C || key === KEY_A || key === KEY_V) {
        if ((percent >= 0 && percent < end) || (plus >= 0 && plus < end)) return undefined;
        const value = eq < end ? querystring.slice(eq + 1, end) : '';
        if (key === KEY_B) {
          if (b !== undefined) return undefined;
          b = value;
        } else if (key === KEY_C) {
          if (c !== undefined) return undefined;
          c = value;
        } else if (key === KEY_A) {
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
