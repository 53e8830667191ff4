/** A fast path for the common update operators on plain paths; anything else returns undefined so mingo handles it. */

import { cloneDoc, encode } from './codec.js';
import type { Doc } from './port.js';

type Plain = Record<string, unknown>;

function isPlain(value: unknown): value is Plain {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date) && !(value instanceof RegExp);
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return encode(a) === encode(b);
}

const FAST_OPS = new Set(['$set', '$unset', '$inc', '$min', '$max']);
const SEGMENT = /^[^$.\d][^.]*$/; // no positional ($), no array-index segments

/** The parent object of `path`, creating plain objects when `create`; undefined when not a plain path. */
function parentOf(doc: Plain, path: string, create: boolean): { parent: Plain; key: string } | null | undefined {
  const parts = path.split('.');
  let node = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i] as string;
    const next = node[part];
    if (next === undefined) {
      if (!create) return null; // nothing to unset
      const created: Plain = {};
      node[part] = created;
      node = created;
    } else if (isPlain(next)) {
      node = next;
    } else {
      return undefined;
    }
  }
  return { parent: node, key: parts[parts.length - 1] as string };
}

function comparable(a: unknown, b: unknown): boolean {
  return (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string') || (a instanceof Date && b instanceof Date);
}

/** Apply `modifier` to `doc` in place; returns whether it changed, or undefined when the fast path does not apply. */
export function fastUpdate(doc: Doc, modifier: Record<string, unknown>): boolean | undefined {
  const paths: string[] = [];
  for (const [op, fields] of Object.entries(modifier)) {
    if (!FAST_OPS.has(op) || !isPlain(fields)) return undefined;
    for (const path of Object.keys(fields)) {
      if (!path.split('.').every((segment) => SEGMENT.test(segment))) return undefined;
      paths.push(path);
    }
  }
  // Two operators on the same path (or a path and its prefix) is a MongoDB error: let mingo raise it.
  for (let i = 0; i < paths.length; i++) {
    for (let j = i + 1; j < paths.length; j++) {
      const a = paths[i] as string;
      const b = paths[j] as string;
      if (a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`)) return undefined;
    }
  }
  let modified = false;
  for (const [op, fields] of Object.entries(modifier) as [string, Plain][]) {
    for (const [path, value] of Object.entries(fields)) {
      const at = parentOf(doc, path, op !== '$unset');
      if (at === undefined) return undefined;
      if (at === null) continue;
      const { parent, key } = at;
      const old = parent[key];
      const has = Object.hasOwn(parent, key);
      if (op === '$set') {
        if (!has || !equal(old, value)) {
          parent[key] = typeof value === 'object' && value !== null ? cloneDoc(value) : value;
          modified = true;
        }
      } else if (op === '$unset') {
        if (has) {
          delete parent[key];
          modified = true;
        }
      } else if (op === '$inc') {
        if (typeof value !== 'number' || (has && typeof old !== 'number')) return undefined;
        if (!has) {
          parent[key] = value;
          modified = true;
        } else if (value !== 0) {
          parent[key] = (old as number) + value;
          modified = true;
        }
      } else {
        // $min / $max
        if (!has || old === undefined) {
          parent[key] = typeof value === 'object' && value !== null ? cloneDoc(value) : value;
          modified = true;
          continue;
        }
        if (!comparable(old, value)) return undefined; // mixed BSON types: leave the ordering rules to mingo
        const smaller = (value as number) < (old as number);
        const larger = (value as number) > (old as number);
        if ((op === '$min' && smaller) || (op === '$max' && larger)) {
          parent[key] = value instanceof Date ? new Date(value.getTime()) : value;
          modified = true;
        }
      }
    }
  }
  return modified;
}
