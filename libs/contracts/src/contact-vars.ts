import { z } from 'zod';

/** What the dialer packs into a webhook URL's `v` for each contact (base64url JSON); unknown keys are ignored. */
export const ContactVars = z.object({
  name: z.string().max(200).optional(),
  language: z.string().max(20).optional(),
  vars: z.record(z.string(), z.string().max(2000)).optional(),
});
export type ContactVars = z.infer<typeof ContactVars>;

/** Encode contact variables for the `v` query parameter (base64url of the JSON). */
export function encodeContactVars(vars: ContactVars): string {
  return Buffer.from(JSON.stringify(vars), 'utf8').toString('base64url');
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const optionalString = (value: unknown, max: number): boolean => value === undefined || (typeof value === 'string' && value.length <= max);

/**
 * `ContactVars.safeParse` by hand, for a value the decoder just made (JSON.parse or parsePlain): this
 * runs on every answer webhook, where the schema's generic machinery was the largest remaining cost.
 * Same rules, unknown keys dropped; a test holds the two to the same answers.
 */
function readContactVars(value: unknown): ContactVars | undefined {
  if (!isRecord(value)) return undefined;
  const { name, language, vars } = value;
  if (!optionalString(name, 200) || !optionalString(language, 20)) return undefined;
  const out: ContactVars = {};
  if (name !== undefined) out.name = name as string;
  if (language !== undefined) out.language = language as string;
  if (vars !== undefined) {
    const read = readVars(vars);
    if (read === undefined) return undefined;
    out.vars = read;
  }
  return out;
}

/** `vars` when every value is a string within the limit; the decoder just made it, so it is nobody else's and is kept as it is. */
function readVars(vars: unknown): Record<string, string> | undefined {
  if (!isRecord(vars)) return undefined;
  const keys = Object.keys(vars);
  let proto = false;
  for (const key of keys) {
    // Like the schema, a `__proto__` key (an own property when JSON.parse made it) is dropped unread.
    if (key === '__proto__') proto = true;
    else if (typeof vars[key] !== 'string' || (vars[key] as string).length > 2000) return undefined;
  }
  if (!proto) return vars as Record<string, string>;
  return Object.fromEntries(keys.filter((key) => key !== '__proto__').map((key) => [key, vars[key] as string]));
}

// Reused by every decode (synchronous, so never by two at once): a fresh Buffer per answer webhook
// was a measurable share of its cost.
const scratch = Buffer.allocUnsafe(8192);

/** The UTF-8 text that base64url `v` encodes (invalid characters are skipped, as Buffer.from does). */
function base64urlText(v: string): string {
  // 4 characters carry at most 3 bytes: a longer v might not fit the scratch buffer.
  if (v.length > (scratch.length / 3) * 4) return Buffer.from(v, 'base64url').toString('utf8');
  return scratch.toString('utf8', 0, scratch.write(v, 'base64url'));
}

// JSON.parse, a runtime call, was the largest part of decoding the small objects encodeContactVars
// writes; the plain reader below takes the shape JSON.stringify gives them and leaves the rest to it.
const QUOTE = 0x22;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
/** A backslash (an escape) or a control character (invalid in a JSON string): JSON.parse must read it. */
const NOT_PLAIN = /[\\\u0000-\u001f]/;

type Reader = { text: string; at: number };

/**
 * The `name`, `language` and `vars` of JSON.parse(text), when the text is an object of strings and
 * objects of strings written without whitespace or escapes and without `__proto__` keys in the inner
 * objects (JSON.stringify of ContactVars); undefined for any other text, which the caller hands to
 * JSON.parse. Other keys are read and dropped, as readContactVars drops them. Where it answers, it
 * answers as JSON.parse does (a test holds the two together).
 */
function parsePlain(text: string): { name: unknown; language: unknown; vars: unknown } | undefined {
  if (NOT_PLAIN.test(text) || text.charCodeAt(0) !== OPEN) return undefined;
  const r: Reader = { text, at: 1 };
  let name: unknown;
  let language: unknown;
  let vars: unknown;
  let next = text.charCodeAt(1) === CLOSE ? (r.at++, CLOSE) : COMMA;
  while (next === COMMA) {
    const key = readString(r);
    if (key === undefined || text.charCodeAt(r.at) !== COLON) return undefined;
    r.at++;
    const value = text.charCodeAt(r.at) === QUOTE ? readString(r) : readObject(r);
    if (value === undefined) return undefined;
    // A repeated key takes the last value, as with JSON.parse.
    if (key === 'name') name = value;
    else if (key === 'language') language = value;
    else if (key === 'vars') vars = value;
    next = text.charCodeAt(r.at++);
  }
  return next === CLOSE && r.at === text.length ? { name, language, vars } : undefined;
}

/** An object of strings at `r.at`. */
function readObject(r: Reader): Record<string, string> | undefined {
  if (r.text.charCodeAt(r.at) !== OPEN) return undefined;
  r.at++;
  const out: Record<string, string> = {};
  let next = r.text.charCodeAt(r.at) === CLOSE ? (r.at++, CLOSE) : COMMA;
  while (next === COMMA) {
    const key = readString(r);
    // `__proto__` as a key: JSON.parse makes it an own property, an assignment would not.
    if (key === undefined || key === '__proto__' || r.text.charCodeAt(r.at) !== COLON) return undefined;
    r.at++;
    const value = readString(r);
    if (value === undefined) return undefined;
    // A repeated key keeps its first place and takes the last value, as with JSON.parse.
    out[key] = value;
    next = r.text.charCodeAt(r.at++);
  }
  return next === CLOSE ? out : undefined;
}

/** A string at `r.at`; with no backslash in the text, the next quote ends it. */
function readString(r: Reader): string | undefined {
  if (r.text.charCodeAt(r.at) !== QUOTE) return undefined;
  const close = r.text.indexOf('"', r.at + 1);
  if (close < 0) return undefined;
  const value = r.text.slice(r.at + 1, close);
  r.at = close + 1;
  return value;
}

/** Decode `v`: absent or empty → `{}`; malformed → `undefined` (the caller speaks without variables). */
export function decodeContactVars(v: string | undefined): ContactVars | undefined {
  if (v === undefined || v === '') return {};
  try {
    const text = base64urlText(v);
    return readContactVars(parsePlain(text) ?? JSON.parse(text));
  } catch {
    return undefined;
  }
}
