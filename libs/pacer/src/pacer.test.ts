import { Kvm, type KV } from '@nats-io/kv';
import { connectNats, startNatsServer, type NatsConnection, type NatsServerHandle } from '@clarion/nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalPacer, createSharedPacer, PacerError } from './index.js';

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

describe('createLocalPacer', () => {
  it('spaces grants by 1000/R × safety and starts at once', async () => {
    const pacer = createLocalPacer({ ratePerSecond: 50 });
    const started = Date.now();
    const grants = await Promise.all(Array.from({ length: 60 }, () => pacer.acquire()));
    expect(grants[0]! - started).toBeLessThan(50);
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
      await Promise.all(pacers.map((pacer) => Promise.all(Array.from({ length: perReplica }, () => pacer.acquire()))))
    ).flat();
    expect(grants).toHaveLength(3 * perReplica);
    expect(new Set(grants).size).toBe(grants.length);
    expect(maxPerRollingSecond(grants)).toBeLessThanOrEqual(rate);
    const sorted = [...grants].sort((a, b) => a - b);
    const achieved = (sorted.length - 1) / ((sorted.at(-1)! - sorted[0]!) / 1000);
    expect(achieved).toBeGreaterThanOrEqual(0.97 * rate);
    expect(achieved).toBeLessThanOrEqual(rate);
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
    const normals = Promise.all(Array.from({ length: 40 }, () => b!.acquire(undefined, { priority: 'normal' }).then((g) => normal.push(g))));
    while (normal.length < 5) await new Promise((resolve) => setTimeout(resolve, 5));
    const critical = await Promise.all(Array.from({ length: 10 }, () => a!.acquire(undefined, { priority: 'critical' })));
    await normals;
    const first = Math.min(...critical);
    const last = Math.max(...critical);
    // Grants are slots of the shared schedule: no normal slot lies inside the critical run.
    expect(normal.filter((g) => g > first && g < last)).toEqual([]);
    expect(normal.filter((g) => g > last)).not.toHaveLength(0);
  });
});
