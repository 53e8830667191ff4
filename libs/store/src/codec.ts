/** JSON encoding shared by the journal and key canonicalisation: Dates survive as `{ $date: ms }`. */

import { randomBytes } from 'node:crypto';

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // `value` has already been through Date#toJSON, so look at the raw property.
  const raw = this[key];
  if (raw instanceof Date) return { $date: raw.getTime() };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const ms = (value as { $date?: unknown }).$date;
    if (keys.length === 1 && typeof ms === 'number') return new Date(ms);
  }
  return value;
}

/** Whether a Date sits anywhere in `value` (plain objects and arrays walked). */
function hasDate(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (value instanceof Date) return true;
  if (Array.isArray(value)) return value.some(hasDate);
  for (const key in value) if (hasDate((value as Record<string, unknown>)[key])) return true;
  return false;
}

/** Serialise a value (Dates preserved) to one JSON line-safe string. */
export function encode(value: unknown): string {
  // A replacer function makes JSON.stringify several times slower: use it only when needed.
  return hasDate(value) ? JSON.stringify(value, replacer) : JSON.stringify(value);
}

/** Parse what `encode` produced. */
export function decode(text: string): unknown {
  return JSON.parse(text, reviver);
}

/**
 * A deep copy of a stored document: plain objects, arrays and Dates are copied by hand (several times
 * faster than `structuredClone`, which dominated streamed reads); anything else goes to `structuredClone`.
 */
export function cloneDoc<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (Array.isArray(value)) return value.map(cloneDoc) as T;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return structuredClone(value);
  // Spread copies a plain object in one step into a compactly laid-out object; then nested values.
  const out = { ...value } as Record<string, unknown>;
  for (const key in out) {
    const field = out[key];
    if (field !== null && typeof field === 'object') out[key] = cloneDoc(field);
  }
  return out as T;
}

/** A Map key for a value compared the way MongoDB compares equal values (field order matters). */
export function valueKey(value: unknown): string {
  if (typeof value === 'string') return `s${value}`;
  if (typeof value === 'number') return `n${value}`;
  if (value === undefined || value === null) return 'z';
  // Compound index keys: length-prefixed parts, so no two different tuples share a key.
  if (Array.isArray(value) && value.every(isScalar)) return `a${value.map(lengthPrefixedKey).join('')}`;
  return `j${encode(value)}`;
}

/**
 * A Map key for one value with `valueKey`'s equality, but a string is its own key: no key string is
 * built (and kept) per document. Other values get a NUL-tagged key, which no untagged string starts with.
 */
export function mapKey(value: unknown): string {
  if (typeof value === 'string') return value.charCodeAt(0) === 0 ? `\u0000s${value}` : value;
  return `\u0000${valueKey(value)}`;
}

const isScalar = (value: unknown): boolean => value === null || value === undefined || typeof value === 'string' || typeof value === 'number';

const lengthPrefixedKey = (part: unknown): string => {
  const key = valueKey(part);
  return `${key.length}:${key}`;
};

const processPart = randomBytes(5).toString('hex');
let counter = randomBytes(3).readUIntBE(0, 3);

/** A new ObjectId-like id as a 24-hex-digit string: time, process-random, counter. */
export function newId(): string {
  counter = (counter + 1) & 0xffffff;
  const time = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
  return `${time}${processPart}${counter.toString(16).padStart(6, '0')}`;
}
