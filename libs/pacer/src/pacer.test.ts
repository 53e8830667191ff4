import { Kvm, type KV } from '@nats-io/kv';
import { connectNats, startNatsServer, type NatsConnection, type NatsServerHandle } from '@clarion/nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalPacer, createSharedPacer, PacerError, windowEarliest, recordGrants } from './index.js';

/** The largest number of grants inside any half-open window [t, t + 1000). */
function maxPerRollingSecond(grants: number[]): number {
  const sorted = [...grants].sort((a, b) => a - b);
  let max = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end += 1) {
    while (sorted[end]! - sorted[start]! >= 1000) start += 1;
    max = Math.max(max, end - start + 1);
  }
  return max;
}

describe('windowEarliest', () => {
  it('is free until ⌊R⌋ requests are recent, then follows the ⌊R⌋-th latest arrival bound', () => {
    expect(windowEarliest([[100, 150]], 2, 5, 200)).toBe(0);
    // Answers out of grant order: the 2nd latest bound is 400 (grant 300 answered at 400).
    expect(windowEarliest([[100, 900], [200, 250], [300, 400]], 2, 5, 1000)).toBe(400 + 1000 + 5);
    // An outstanding request may arrive at any moment: it takes a place in every window ahead.
    expect(windowEarliest([[100, 0], [200, 250]], 2, 5, 700)).toBe(250 + 1000 + 5);
    expect(windowEarliest([[100, 0], [200, 0]], 2, 5, 700)).toBe(Infinity);
    // Unanswered a second after its grant, it is taken to have arrived by then.
    expect(windowEarliest([[100, 0], [200, 250]], 1, 5, 1200)).toBe(1100 + 1000 + 5);
  });

  it('with a longer outstanding bound, an unanswered request holds its place until its sender times out', () => {
    // A provider that queues requests may count one long after it was sent: 1.1 s is no proof of arrival.
    expect(windowEarliest([[100, 0], [200, 250]], 1, 5, 1200, 10_000)).toBe(Infinity);
    expect(windowEarliest([[100, 0], [200, 250]], 2, 5, 1200, 10_000)).toBe(250 + 1000 + 5);
    // Once the bound has passed (the sender died), it is taken to have arrived by then.
    expect(windowEarliest([[100, 0], [200, 250]], 1, 5, 10_200, 10_000)).toBe(10_100 + 1000 + 5);
    expect(recordGrants([[100, 0]], new Map(), undefined, 1, 9000, 10_000)).toEqual([[100, 0]]);
    expect(recordGrants([[100, 0]], new Map(), undefined, 1, 12_200, 10_000)).toEqual([]);
  });
});

describe('createLocalPacer', () => {
  it('spaces grants by 1000/R × safety and starts at once', async () => {
    let now = 5_000_000;
    const pacer = createLocalPacer({
      ratePerSecond: 50,
      clock: () => now,
      sleep: async (ms) => {
        now += Math.max(0, ms);
      },
    });
    const grants: number[] = [];
    for (let i = 0; i < 60; i += 1) {
      grants.push(await pacer.acquire());
      pacer.answered(grants.at(-1)!);
    }
    expect(grants[0]).toBe(5_000_000);
    expect(maxPerRollingSecond(grants)).toBeLessThanOrEqual(50);
    const rate = (grants.length - 1) / ((grants.at(-1)! - grants[0]!) / 1000);
    expect(rate).toBeGreaterThanOrEqual(0.97 * 50);
  });

  it('penalise holds every grant for the penalty period', async () => {
    let now = 1_000_000;
    const waits: number[] = [];
    const pacer = createLocalPacer({
      ratePerSecond: 10,
      clock: () => now,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    expect(await pacer.acquire()).toBe(1_000_000);
    await pacer.penalise();
    expect(await pacer.acquire()).toBe(1_001_000);
    now = 2_000_000;
    expect(await pacer.acquire()).toBe(2_000_000);
  });

  it('holds a grant until the request R places earlier was answered a second ago', async () => {
    let now = 1_000_000;
    const pacer = createLocalPacer({
      ratePerSecond: 4,
      safetyFactor: 1,
      windowMarginMs: 5,
      clock: () => now,
      sleep: async (ms) => {
        now += Math.max(0, ms);
      },
    });
    const first = await pacer.acquire();
    // Its request reached the provider late: answered 400 ms after the grant.
    now = first + 400;
    pacer.answered(first);
    const grants = [first];
    for (let i = 0; i < 4; i += 1) grants.push(await pacer.acquire());
    // Plain spacing would put the fifth at first + 1000; the late first request still counts then.
    expect(grants.slice(1, 4)).toEqual([first + 400, first + 650, first + 900]);
    expect(grants[4]).toBe(first + 400 + 1000 + 5);
  });

  it('answered is a no-op without the guard and the guard is off above 100 per second', async () => {
    let now = 1_000_000;
    const options = {
      safetyFactor: 1,
      clock: () => now,
      sleep: async (ms: number) => {
        now += Math.max(0, ms);
      },
    };
    for (const [rate, guard] of [[2, false], [200, undefined]] as const) {
      const pacer = createLocalPacer({ ...options, ratePerSecond: rate, ...(guard === undefined ? {} : { rollingWindowGuard: guard }) });
      now = 1_000_000;
      const first = await pacer.acquire();
      // Answered late enough that a guard would hold the ⌊R⌋-th next grant past first + 1 s.
      now = first + 3;
      pacer.answered(first);
      let last = first;
      for (let i = 0; i < rate; i += 1) last = await pacer.acquire();
      expect(last - first).toBeCloseTo(rate * pacer.intervalMs, 6);
    }
  });

  it('rejects an aborted acquire', async () => {
    const pacer = createLocalPacer({ ratePerSecond: 1 });
    await pacer.acquire();
    const controller = new AbortController();
    const pending = pacer.acquire(controller.signal);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(PacerError);
  });
});

describe('createSharedPacer', () => {
  let server: NatsServerHandle;
  const connections: NatsConnection[] = [];
  const buckets: KV[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    for (let i = 0; i < 3; i += 1) {
      const nc = await connectNats({ servers: server.url, name: `pacer-test-${i}` });
      connections.push(nc);
      buckets.push(await new Kvm(nc).create('pacer'));
    }
  });
  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close()));
    await server?.dispose();
  });

  it('holds no rolling second above R across 3 replicas and achieves ≥ 0.97 R', async () => {
    const rate = 40;
    const pacers = buckets.map((kv) => createSharedPacer({ kv, key: 'account-a', ratePerSecond: rate }));
    const perReplica = 40;
    const grants = (
      await Promise.all(
        pacers.map((pacer) =>
          Promise.all(
            Array.from({ length: perReplica }, () =>
              pacer.acquire().then((grant) => {
                pacer.answered(grant); // as if the provider answered at once
                return grant;
              }),
            ),
          ),
        ),
      )
    ).flat();
    expect(grants).toHaveLength(3 * perReplica);
    expect(new Set(grants).size).toBe(grants.length);
    expect(maxPerRollingSecond(grants)).toBeLessThanOrEqual(rate);
    const sorted = [...grants].sort((a, b) => a - b);
    const achieved = (sorted.length - 1) / ((sorted.at(-1)! - sorted[0]!) / 1000);
    expect(achieved).toBeGreaterThanOrEqual(0.97 * rate);
    expect(achieved).toBeLessThanOrEqual(rate);
  });

  it('a request answered late on one replica holds the grant ⌊R⌋ places later on another', async () => {
    const [a, b] = buckets.map((kv) => createSharedPacer({ kv, key: 'account-d', ratePerSecond: 5, safetyFactor: 1, windowMarginMs: 5 }));
    const first = await a!.acquire();
    // Answered 300 ms after its grant (a slow hop): the provider may have counted it that late.
    await new Promise((resolve) => setTimeout(resolve, 300));
    a!.answered(first);
    const answeredAt = Date.now();
    const grants = [first];
    for (let i = 0; i < 5; i += 1) grants.push(await b!.acquire());
    // The fifth grant after the first (⌊R⌋ = 5 places) waits for the first's answer + 1 s.
    expect(grants[5]!).toBeGreaterThanOrEqual(answeredAt + 1000);
    expect(maxPerRollingSecond(grants)).toBeLessThanOrEqual(5);
  });

  it('reserves a block of slots per write when many waiters queue', async () => {
    const kv = buckets[0]!;
    const pacer = createSharedPacer({ kv, key: 'account-e', ratePerSecond: 100 });
    // Revisions are the bucket's stream sequence: the difference counts the writes in between.
    const before = await kv.put('marker-e', 'x');
    const grants = await Promise.all(Array.from({ length: 60 }, () => pacer.acquire()));
    const writes = (await kv.get('account-e'))!.revision - before;
    expect(new Set(grants).size).toBe(60);
    expect(maxPerRollingSecond(grants)).toBeLessThanOrEqual(100);
    // The horizon (200 ms) holds 19 slots at 100/s: a handful of writes, not 60.
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThan(15);
  });

  it('a penalty from one replica slows every replica', async () => {
    const [a, b] = buckets.map((kv) => createSharedPacer({ kv, key: 'account-b', ratePerSecond: 100, penaltyMs: 400 }));
    const first = await a!.acquire();
    await a!.penalise();
    const next = await b!.acquire();
    expect(next - first).toBeGreaterThanOrEqual(390);
  });

  it('a critical acquisition on one replica holds normal grants on every other replica', async () => {
    const [a, b] = buckets.map((kv) => createSharedPacer({ kv, key: 'account-c', ratePerSecond: 50 }));
    const normal: number[] = [];
    const answer = (pacer: typeof a, grant: number) => {
      pacer!.answered(grant);
      return grant;
    };
    const normals = Promise.all(Array.from({ length: 40 }, () => b!.acquire(undefined, { priority: 'normal' }).then((g) => normal.push(answer(b, g)))));
    while (normal.length < 5) await new Promise((resolve) => setTimeout(resolve, 5));
    const critical = await Promise.all(Array.from({ length: 10 }, () => a!.acquire(undefined, { priority: 'critical' }).then((g) => answer(a, g))));
    await normals;
    const first = Math.min(...critical);
    const last = Math.max(...critical);
    // Grants are slots of the shared schedule: no normal slot lies inside the critical run.
    expect(normal.filter((g) => g > first && g < last)).toEqual([]);
    expect(normal.filter((g) => g > last)).not.toHaveLength(0);
  });
});
