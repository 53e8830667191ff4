import { createHash, hash, randomFillSync } from 'node:crypto';

// Random bytes drawn a few kilobytes at a time: an import takes one id per contact, and one
// randomBytes (or randomUUID and reshaping its text) per id costs several times more.
const entropy = Buffer.alloc(8 * 1024);
let taken = entropy.length;

/** A new random id with a prefix: `<prefix>-<16 hex>` (64 random bits); ids travel in subjects, so no dots. */
export function newId(prefix: string): string {
  if (taken === entropy.length) {
    randomFillSync(entropy);
    taken = 0;
  }
  const hex = entropy.toString('hex', taken, taken + 8);
  taken += 8;
  return `${prefix}-${hex}`;
}

/**
 * A stable id derived from its parts (sha256, 16 hex), so re-enqueueing yields the same ids.
 * One-shot `hash` (Node ≥ 20.12): an enqueue takes one per contact, and a `createHash` object costs twice as much.
 */
export function stableId(prefix: string, ...parts: string[]): string {
  return `${prefix}${hash('sha256', parts.join('\u0000'), 'hex').slice(0, 16)}`;
}

/** A KV-safe key for an idempotency key of any spelling. */
export function idempotencyKvKey(key: string): string {
  return `k-${createHash('sha256').update(key).digest('hex')}`;
}
