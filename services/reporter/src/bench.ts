import type { StreamEvent } from '@clarion/contracts';
import type { Store } from '@clarion/store';
import { Aggregation, type ReportInput } from './aggregate.js';

/** Result of one aggregation benchmark run. */
export interface AggregationBenchResult {
  events: number;
  contacts: number;
  batchSize: number;
  seconds: number;
  eventsPerSecond: number;
}

/**
 * Apply about `events` synthetic events (a realistic mix: dial job, placed, call statuses, outcome, final)
 * through the aggregation in batches of `batchSize` and return events applied per second.
 */
export async function benchAggregation(store: Store, options: { events?: number; batchSize?: number; broadcastId?: string } = {}): Promise<AggregationBenchResult> {
  const total = options.events ?? 100_000;
  const batchSize = options.batchSize ?? 500;
  const bid = options.broadcastId ?? `bench-${Date.now().toString(36)}`;
  const aggregation = new Aggregation(store);
  await aggregation.ensureIndexes();
  const perContact = 8;
  // Two broadcast events, then whole contacts only, so the broadcast completes.
  const contacts = Math.max(1, Math.floor((total - 2) / perContact));
  const t0 = Date.parse('2026-01-01T00:00:00.000Z');
  const at = (ms: number) => new Date(t0 + ms).toISOString();
  const inputs: ReportInput[] = [];
  const event = (e: StreamEvent) => inputs.push({ kind: 'event', event: e });
  event({ kind: 'broadcast', broadcastId: bid, type: 'created', at: at(0), name: 'bench' });
  event({ kind: 'broadcast', broadcastId: bid, type: 'enqueued', at: at(1), counts: { accepted: contacts, invalid: 0, duplicate: 0, suppressed: 0 } });
  for (let i = 0; i < contacts; i++) {
    const cid = `c${i}`;
    const number = `+1202555${String(100 + (i % 100)).padStart(4, '0')}`;
    const uuid = `u-${i}`;
    const base = { broadcastId: bid, contactId: cid };
    inputs.push({ kind: 'job', job: { ...base, number, attempt: 1 } });
    event({ kind: 'attempt', ...base, attempt: 1, number, phase: 'placed', at: at(i * 10), uuid });
    for (const status of ['started', 'ringing', 'answered', 'completed']) {
      event({ kind: 'call', ...base, attempt: 1, uuid, status, timestamp: at(i * 10 + 1), receivedAt: at(i * 10 + 2), raw: {} });
    }
    event({ kind: 'attempt', ...base, attempt: 1, number, phase: 'outcome', outcome: 'answered', at: at(i * 10 + 3) });
    event({ kind: 'contact', ...base, number, state: 'answered', attempts: 1, at: at(i * 10 + 4) });
  }
  const started = performance.now();
  for (let i = 0; i < inputs.length; i += batchSize) await aggregation.apply(inputs.slice(i, i + batchSize));
  const seconds = (performance.now() - started) / 1000;
  return { events: inputs.length, contacts, batchSize, seconds: Math.round(seconds * 1000) / 1000, eventsPerSecond: Math.round(inputs.length / seconds) };
}
