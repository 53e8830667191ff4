import { createHash, randomUUID } from 'node:crypto';

/** A new random id with a prefix: `<prefix>-<16 hex>`; ids travel in subjects, so no dots. */
export function newId(prefix: string): string {
  // randomUUID draws from a buffered entropy pool: far cheaper per id than randomBytes on import paths.
  return `${prefix}-${randomUUID().replaceAll('-', '').slice(0, 16)}`;
}

/** A stable id derived from its parts (sha256, 16 hex), so re-enqueueing yields the same ids. */
export function stableId(prefix: string, ...parts: string[]): string {
  return `${prefix}${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16)}`;
}

/** A KV-safe key for an idempotency key of any spelling. */
export function idempotencyKvKey(key: string): string {
  return `k-${createHash('sha256').update(key).digest('hex')}`;
}
