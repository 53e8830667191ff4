import { BROADCAST_REQUEST } from '@clarion/contracts';
import { connectNats, encodeJson, type NatsConnection } from '@clarion/nats';
import { freePort, startNatsServer, waitFor, type NatsServerHandle } from '@clarion/testkit';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

let nats: NatsServerHandle;
let nc: NatsConnection;
const dataDir = mkdtempSync(join(tmpdir(), 'contacts-main-'));

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'contacts-main-test' });
});
afterAll(async () => {
  await nc?.drain();
  await nats?.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

function run(env: Record<string, string>): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

describe('main', () => {
  it('starts, serves HTTP and NATS, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const proc = run({ PORT: String(port), HOST: '127.0.0.1', NATS_URL: nats.url, API_TOKEN: 'main-test-token', DATA_DIR: dataDir });
    try {
      const line = await waitFor(() => proc.output().split('\n').find((l) => l.includes('"msg":"listening"')), { message: 'listening line' });
      expect(JSON.parse(line)).toMatchObject({ msg: 'listening', port });
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      const reply = await nc.request(BROADCAST_REQUEST, encodeJson({ name: 'smoke', message: { text: 'hi' }, audience: { numbers: ['+12125550199'] } }), { timeout: 10_000 });
      expect(reply.json()).toMatchObject({ ok: true, counts: { accepted: 1 } });
    } finally {
      proc.child.kill('SIGTERM');
    }
    expect(await proc.exit).toBe(0);
  });

  it('refuses to start without API_TOKEN, naming the variable', async () => {
    const proc = run({ NATS_URL: nats.url });
    expect(await proc.exit).toBe(1);
    expect(proc.output()).toContain('API_TOKEN');
  });
});
