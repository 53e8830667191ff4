/** The document MongoDB starts an upsert from: the filter's equality fields (incl. `$and`, `$eq`). */

import type { Doc, Filter } from './port.js';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date) && !(value instanceof RegExp);
}

/** True for `{ $gt: 1 }`-style operator objects (first key starts with `$`). */
export function isOperatorObject(value: unknown): value is Record<string, unknown> {
  if (!isPlainObject(value)) return false;
  const first = Object.keys(value)[0];
  return first !== undefined && first.startsWith('$');
}

function setPath(target: Doc, path: string, value: unknown): void {
  const parts = path.split('.');
  let node: Record<string, unknown> = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i] as string;
    const next = node[part];
    if (isPlainObject(next)) {
      node = next;
    } else {
      const created: Record<string, unknown> = {};
      node[part] = created;
      node = created;
    }
  }
  node[parts[parts.length - 1] as string] = structuredClone(value);
}

function collect(filter: Filter, out: Doc): void {
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(value)) {
      for (const clause of value) if (isPlainObject(clause)) collect(clause, out);
    } else if (key.startsWith('$')) {
      continue;
    } else if (isOperatorObject(value)) {
      if ('$eq' in value) setPath(out, key, value.$eq);
    } else if (!(value instanceof RegExp)) {
      setPath(out, key, value);
    }
  }
}

/** Build the upsert seed document from a filter. */
export function upsertSeed(filter: Filter): Doc {
  const out: Doc = {};
  collect(filter, out);
  return out;
}
