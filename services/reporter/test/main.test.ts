import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { broadcastEventSubject } from '@clarion/contracts';
import { connectNats, jetstream, publishJson } from '@clarion/nats';
import { freePort, startNatsServer, waitFor, type NatsServerHandle } from '@clarion/testkit';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

let nats: NatsServerHandle;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.dispose();
});

/** Run dist/main.js with the given environment, collecting its JSON log lines. */
function run(env: Record<string, string>) {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const listeners: (() => void)[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
      for (const l of listeners) l();
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const line = (match: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found) resolve(found);
      };
      listeners.push(check);
      check();
      setTimeout(() => reject(new Error(`no matching log line; got ${JSON.stringify(lines)}`)), timeoutMs).unref();
    });
  return { child, lines, exited, line };
}

// dist/ is built by `turbo run test` (test depends on build); run `npm run build` first when calling vitest directly.
describe.skipIf(!existsSync(MAIN))('main.ts', () => {
  it('starts, serves /readyz, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const p = run({ NATS_URL: nats.url, API_TOKEN: 'main-test-token', PORT: String(port), HOST: '127.0.0.1' });
    const listening = await p.line((l) => l.msg === 'listening');
    expect(listening.port).toBe(port);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    // An open live stream must not hold up shutdown.
    const nc = await connectNats({ servers: nats.url, name: 'main-test' });
    await publishJson(jetstream(nc), broadcastEventSubject('main-1'), { kind: 'broadcast', broadcastId: 'main-1', type: 'created', at: '2026-03-02T10:00:00.000Z' });
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/v1/broadcasts/main-1?token=main-test-token`)).status === 200);
    const stream = await fetch(`${base}/v1/broadcasts/main-1/stream?token=main-test-token`);
    expect(stream.status).toBe(200);
    const started = Date.now();
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    await nc.close();
  });

  it('refuses to start without API_TOKEN and names the variable', async () => {
    const p = run({ NATS_URL: nats.url, PORT: String(await freePort()) });
    expect(await p.exited).toBe(1);
    expect(JSON.stringify(p.lines)).toContain('API_TOKEN');
  });
});
