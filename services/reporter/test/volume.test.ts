import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DialJob, StreamEvent } from '@clarion/contracts';
import { waitFor } from '@clarion/testkit';
import type { BroadcastSummary } from '../src/records.js';
import { startHarness, type Harness, STORES } from './helpers.js';

let h: Harness;

const OUTCOMES = ['acknowledged', 'answered', 'voicemail', 'busy', 'no_answer'] as const;

function volume(bid: string, contacts: number): (StreamEvent | DialJob)[] {
  const at = (ms: number) => new Date(Date.parse('2026-03-03T09:00:00.000Z') + ms).toISOString();
  const out: (StreamEvent | DialJob)[] = [
    { kind: 'broadcast', broadcastId: bid, type: 'created', at: at(0), name: 'Volume' },
    { kind: 'broadcast', broadcastId: bid, type: 'enqueued', at: at(1), counts: { accepted: contacts, invalid: 0, duplicate: 0, suppressed: 0 } },
  ];
  for (let i = 0; i < contacts; i++) {
    const cid = `v${i}`;
    const number = `+4420794600${String(i % 100).padStart(2, '0')}`;
    const state = OUTCOMES[i % OUTCOMES.length] ?? 'answered';
    out.push({ broadcastId: bid, contactId: cid, number, attempt: 1 });
    out.push({ kind: 'attempt', broadcastId: bid, contactId: cid, attempt: 1, number, phase: 'placed', at: at(i), uuid: `u${i}` });
    out.push({ kind: 'call', broadcastId: bid, contactId: cid, attempt: 1, uuid: `u${i}`, status: 'started', timestamp: at(i), receivedAt: at(i), raw: {} });
    out.push({ kind: 'attempt', broadcastId: bid, contactId: cid, attempt: 1, number, phase: 'outcome', outcome: state, at: at(i + 1) });
    out.push({ kind: 'contact', broadcastId: bid, contactId: cid, number, state, attempts: 1, at: at(i + 2) });
  }
  return out;
}

// The same suite on every store: the embedded one always, MongoDB when MONGO_URL is set.
describe.each(STORES)('on the $name store', (store) => {
  beforeAll(async () => {
    h = await startHarness(store.open);
  });
  afterAll(async () => {
    await h?.close();
  });

  describe('volume through NATS', () => {
    it('applies 10,000 messages exactly, with batching', async () => {
      const bid = 'volume-1';
      const contacts = 2_000;
      const messages = volume(bid, contacts);
      const started = Date.now();
      for (let i = 0; i < messages.length; i += 500) await Promise.all(messages.slice(i, i + 500).map((m) => h.publish(m)));
      const published = (Date.now() - started) / 1000;
      const s = await waitFor(
        async () => {
          const r = await h.get<BroadcastSummary>(`/v1/broadcasts/${bid}`);
          return r.status === 200 && r.body.done ? r.body : undefined;
        },
        { timeoutMs: 20_000, message: 'volume broadcast done' },
      );
      const seconds = (Date.now() - started) / 1000;
      expect(s.counts).toEqual(Object.fromEntries(OUTCOMES.map((o) => [o, contacts / OUTCOMES.length])));
      expect(s.attempts).toBe(contacts);
      process.stdout.write(`${JSON.stringify({ test: 'reporter-volume', messages: messages.length, seconds, published, perSecond: Math.round(messages.length / seconds) })}\n`);
    });

    it('recovers by itself when NATS restarts mid-broadcast', async () => {
      const bid = 'volume-restart';
      const messages = volume(bid, 200);
      const half = Math.floor(messages.length / 2);
      for (const m of messages.slice(0, half)) await h.publish(m);
      await h.nats.restart();
      // Publishing retries until the client has reconnected; the reporter re-attaches its consumers itself.
      for (const m of messages.slice(half)) await waitFor(() => h.publish(m).then(() => true), { timeoutMs: 15_000, message: 'publish after restart' });
      const s = await waitFor(
        async () => {
          const r = await h.get<BroadcastSummary>(`/v1/broadcasts/${bid}`);
          return r.status === 200 && r.body.done ? r.body : undefined;
        },
        { timeoutMs: 20_000, message: 'broadcast done after NATS restart' },
      );
      expect(s.final).toBe(200);
      expect(s.counts).toEqual(Object.fromEntries(OUTCOMES.map((o) => [o, 40])));
    });
  });
});
