import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { STREAMS } from '@clarion/contracts';
import { connectNats, type NatsConnection } from './connection.js';
import { ensureBuckets, ensureConsumer, ensureStreams } from './topology.js';
import { ack, nak, startConsumeLoop, term } from './consume.js';
import { publishJson } from './publish.js';
import { startNatsServer, type NatsServerHandle } from './server.js';

async function until(check: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('nats helpers against a private nats-server', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats({ servers: server.url, name: 'nats-test' });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.dispose();
  });

  it('creates streams and buckets idempotently, and dedupes by message id', async () => {
    const jsm = await ensureStreams(nc);
    await ensureStreams(nc);
    await ensureBuckets(nc);
    const js = jetstream(nc);
    const first = await publishJson(js, 'dial.job.b-1', { n: 1 }, 'b-1.c-1.1');
    const again = await publishJson(js, 'dial.job.b-1', { n: 1 }, 'b-1.c-1.1');
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(first.seq);
    expect((await jsm.streams.info(STREAMS.dial.name)).state.messages).toBe(1);
  });

  it('gives the call-slots bucket the max age the dialer asks for, and other callers leave it alone', async () => {
    const { slots } = await ensureBuckets(nc, { slotMaxAgeMs: 90_000 });
    expect((await slots.status()).ttl).toBe(90_000);
    const again = await ensureBuckets(nc);
    expect((await again.slots.status()).ttl).toBe(90_000);
    await ensureBuckets(nc, { slotMaxAgeMs: 120_000 });
    expect((await slots.status()).ttl).toBe(120_000);
  });

  it('consume loop: acks handled messages, redelivers nak, drops term, and stops cleanly', async () => {
    const jsm = await ensureStreams(nc);
    await ensureConsumer(jsm, STREAMS.events.name, { durable_name: 'test-loop', filter_subject: 'evt.test.>' });
    const js = jetstream(nc);
    const seen: string[] = [];
    const terms: string[] = [];
    let naked = false;
    const loop = startConsumeLoop({
      nc,
      stream: STREAMS.events.name,
      consumer: 'test-loop',
      concurrency: 4,
      onTerm: (reason) => terms.push(reason),
      handler: async (msg) => {
        const body = msg.json<{ id: string }>();
        if (body.id === 'poison') return term('poison message');
        if (body.id === 'flaky' && !naked) {
          naked = true;
          return nak(50);
        }
        seen.push(body.id);
        return ack;
      },
    });
    for (const id of ['a', 'b', 'flaky', 'poison', 'c']) await publishJson(js, 'evt.test.x', { id });
    await until(() => seen.length === 4);
    expect(seen.sort()).toEqual(['a', 'b', 'c', 'flaky']);
    expect(terms).toEqual(['poison message']);
    await loop.stop();
    const info = await jsm.consumers.info(STREAMS.events.name, 'test-loop');
    expect(info.num_pending).toBe(0);
    expect(info.num_ack_pending).toBe(0);
  });

  it('keeps its data across a nats-server restart', { timeout: 40_000 }, async () => {
    const jsm = await ensureStreams(nc);
    const before = (await jsm.streams.info(STREAMS.dial.name)).state.messages;
    await server.restart();
    // A JetStream API request buffered while disconnected can time out once: retry until answered.
    let after: number | undefined;
    for (let attempt = 0; attempt < 5 && after === undefined; attempt += 1) {
      try {
        const jsm2 = await ensureStreams(nc);
        after = (await jsm2.streams.info(STREAMS.dial.name)).state.messages;
      } catch {
        // not reconnected yet
      }
    }
    expect(after).toBe(before);
  });
});
