import { describe, expect, it } from 'vitest';
import { newId, stableId } from './ids.js';

describe('ids', () => {
  it('stableId keeps the ids broadcasts were enqueued with (sha256 of the parts, 16 hex)', () => {
    // Computed with createHash('sha256'): a resumed or repeated enqueue must find the same contact ids.
    expect(stableId('c', 'b-0123456789abcdef', '+12125550100')).toBe('c4da264d60782fe60');
    expect(stableId('c', 'b-0123456789abcdef', '+12125550101')).not.toBe('c4da264d60782fe60');
  });

  it('newId gives distinct prefixed ids', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newId('l')));
    expect(ids.size).toBe(2000);
    for (const id of ids) expect(id).toMatch(/^l-[0-9a-f]{16}$/);
  });
});
