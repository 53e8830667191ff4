import { describe, expect, it } from 'vitest';
import { createEmbeddedStore } from '@clarion/store';
import { benchAggregation } from './bench.js';
import { Reports } from './queries.js';

describe('benchAggregation', () => {
  it('applies every synthetic event and reports a rate (no timing threshold: shared machines vary)', async () => {
    const store = await createEmbeddedStore();
    const result = await benchAggregation(store, { events: 4_000, batchSize: 250, broadcastId: 'bench-test' });
    expect(result.events).toBe(2 + result.contacts * 8);
    expect(result.contacts).toBe(499);
    expect(result.eventsPerSecond).toBeGreaterThan(0);
    const summary = await new Reports(store, () => new Date('2026-01-01T01:00:00Z')).summary('bench-test');
    expect(summary?.audience).toBe(result.contacts);
    expect(summary?.final).toBe(result.contacts);
    expect(summary?.status).toBe('completed');
    await store.close();
  });
});
