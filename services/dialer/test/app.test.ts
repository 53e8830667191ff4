import type { AddressInfo } from 'node:net';
import { createLogger } from '@clarion/logging';
import { listen } from '@clarion/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/index.js';
import { World } from './harness.js';

const world = new World();
beforeAll(() => world.start());
afterAll(() => world.stop());

describe('dialer HTTP', () => {
  it('serves /healthz, /readyz and /metrics', async () => {
    const dialer = await world.dialer();
    const { app } = createApp({ dialer, nc: world.nc, logger: createLogger({ service: 'dialer-test', level: 'silent' }) });
    const server = await listen(app, 0, '127.0.0.1');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', checks: { nats: true, dialer: true } });
      expect(await (await fetch(`${base}/metrics`)).text()).toContain('dialer_calls_placed_total');
      await dialer.stop();
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      expect((await fetch(`${base}/nothing`)).status).toBe(404);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
