import { Agent, request, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import { encodeContactVars, type BroadcastSpec } from '@clarion/contracts';
import { listen } from '@clarion/http';
import { createLogger } from '@clarion/logging';
import { connectNats, ensureBuckets, ensureStreams, jetstream, startNatsServer, type NatsServerHandle } from '@clarion/nats';
import { createWebhookApp } from './app.js';
import { answerNcco } from './ncco.js';

/** Options of the answer-webhook benchmark (all bounded: loopback only, fixed duration). */
export interface AnswerBenchOptions {
  /** Offered load, requests per second (open loop). Default 2000. */
  rate?: number;
  /** Measured duration per target in ms (after a 1 s warm-up). Default 5000. */
  durationMs?: number;
  /** Keep-alive sockets. Default 64. */
  sockets?: number;
  /** An existing NATS to use; otherwise a private nats-server is started and removed. */
  natsUrl?: string;
}

/** Figures of one target under the offered load (latencies in ms). */
export interface LoadFigures {
  offered: number;
  achievedRps: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Figures of one target driven closed-loop (every socket sends its next request on each reply). */
export interface SaturationFigures {
  rps: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/** One JSON-able result: the webhook's figures next to a bare Koa handler's, same run. */
export interface AnswerBenchResult {
  bench: 'answer-webhook';
  conditions: { rate: number; durationMs: number; sockets: number; node: string; loadGenerator: 'same process' };
  /** At the fixed offered load (open loop). */
  webhook: LoadFigures;
  bare: LoadFigures;
  /** At saturation (closed loop); `ratio` = webhook rps / bare rps (target ≥ 0.8). */
  saturation: { webhook: SaturationFigures; bare: SaturationFigures; ratio: number };
}

const SPEC: BroadcastSpec = {
  id: 'bench',
  createdAt: '2026-01-01T00:00:00.000Z',
  request: {
    name: 'bench',
    message: { text: 'Hello {{name}}, the water supply in {{area}} is interrupted until 18:00.', language: 'en-GB', style: 0, repeat: 2 },
    audience: { listIds: [], numbers: ['+14155550100'], defaultCountry: 'US' },
    acknowledgement: { prompt: 'Press 1 to confirm.', key: '1', timeoutSeconds: 5 },
    machine: { action: 'leave_message', countAs: 'reached' },
    retry: { maxAttempts: 3, delaySeconds: 300, on: ['busy', 'no_answer', 'failed'] },
    pacing: {},
    priority: 'normal',
  },
};

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** Offer `rate` req/s to `path` for `durationMs` and measure each latency from its scheduled start. */
async function drive(port: number, path: (i: number) => string, rate: number, durationMs: number, sockets: number): Promise<LoadFigures> {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets });
  const once = (p: string) =>
    new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: p, agent, method: 'GET' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
      req.setTimeout(5000, () => req.destroy());
      req.end();
    });
  const run = async (ms: number, record: boolean) => {
    const latencies: number[] = [];
    let errors = 0;
    let sent = 0;
    const tasks: Promise<void>[] = [];
    const start = performance.now();
    while (performance.now() - start < ms) {
      const due = Math.floor(((performance.now() - start) / 1000) * rate);
      while (sent < due) {
        // Latency counts from the scheduled time, so queueing behind slow replies is not hidden.
        const scheduled = start + (sent * 1000) / rate;
        const i = sent++;
        tasks.push(
          once(path(i)).then((ok) => {
            if (!ok) errors++;
            if (record) latencies.push(performance.now() - scheduled);
          }),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(tasks);
    const elapsed = performance.now() - start;
    return { latencies, errors, sent, elapsed };
  };
  await run(1000, false);
  const { latencies, errors, sent, elapsed } = await run(durationMs, true);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    offered: rate,
    achievedRps: Math.round((sent / elapsed) * 1000),
    requests: sent,
    errors,
    p50Ms: round(quantile(latencies, 0.5)),
    p99Ms: round(quantile(latencies, 0.99)),
    maxMs: round(latencies[latencies.length - 1] ?? 0),
  };
}

/** Drive `path` closed-loop with `sockets` requests in flight for `durationMs` (after a 1 s warm-up). */
async function saturate(port: number, path: (i: number) => string, durationMs: number, sockets: number): Promise<SaturationFigures> {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets });
  const once = (p: string) =>
    new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: p, agent, method: 'GET' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
      req.setTimeout(5000, () => req.destroy());
      req.end();
    });
  let i = 0;
  const run = async (ms: number) => {
    const latencies: number[] = [];
    let errors = 0;
    const start = performance.now();
    const worker = async () => {
      while (performance.now() - start < ms) {
        const t = performance.now();
        if (!(await once(path(i++)))) errors++;
        latencies.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: sockets }, worker));
    return { latencies, errors, elapsed: performance.now() - start };
  };
  await run(1000);
  const { latencies, errors, elapsed } = await run(durationMs);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    rps: Math.round((latencies.length / elapsed) * 1000),
    requests: latencies.length,
    errors,
    p50Ms: round(quantile(latencies, 0.5)),
    p99Ms: round(quantile(latencies, 0.99)),
  };
}

/** Measure answer-webhook throughput and p50/p99 at a fixed offered load vs a bare Koa handler. */
export async function benchAnswerWebhook(options: AnswerBenchOptions = {}): Promise<AnswerBenchResult> {
  const rate = options.rate ?? 2000;
  const durationMs = options.durationMs ?? 5000;
  const sockets = options.sockets ?? 64;
  let natsServer: NatsServerHandle | undefined;
  if (!options.natsUrl) natsServer = await startNatsServer();
  const nc = await connectNats({ servers: options.natsUrl ?? natsServer!.url, name: 'webhook-bench' });
  const servers: Server[] = [];
  try {
    await ensureStreams(nc);
    const buckets = await ensureBuckets(nc);
    await buckets.broadcasts.put(SPEC.id, JSON.stringify(SPEC));
    const webhook = createWebhookApp({
      nc,
      js: jetstream(nc),
      broadcasts: buckets.broadcasts,
      logger: createLogger({ service: 'webhook-bench', level: 'silent' }),
      settings: { publicUrl: 'http://127.0.0.1:8083' },
    });
    await webhook.specs.ready;
    const v = encodeContactVars({ name: 'Ada', vars: { area: 'Riverside' } });
    const constant = JSON.stringify(answerNcco(SPEC, { name: 'Ada', vars: { area: 'Riverside' } }, { b: 'bench', c: 'c1', a: 1 }, 'http://127.0.0.1:8083', v));
    const bareApp = new Koa();
    bareApp.use((ctx) => {
      ctx.type = 'application/json';
      ctx.body = constant;
    });
    const webhookServer = await listen(webhook.app, 0, '127.0.0.1');
    const bareServer = await listen(bareApp, 0, '127.0.0.1');
    servers.push(webhookServer, bareServer);
    const portOf = (s: Server) => (s.address() as { port: number }).port;
    const barePath = () => '/webhooks/answer';
    const webhookPath = (i: number) => `/webhooks/answer?b=bench&c=c${i % 1000}&a=1&v=${v}`;
    const bare = await drive(portOf(bareServer), barePath, rate, durationMs, sockets);
    const measured = await drive(portOf(webhookServer), webhookPath, rate, durationMs, sockets);
    // Closed loop with fewer sockets than the open loop: enough to saturate one event loop.
    const closedSockets = Math.min(sockets, 16);
    const bareMax = await saturate(portOf(bareServer), barePath, durationMs, closedSockets);
    const webhookMax = await saturate(portOf(webhookServer), webhookPath, durationMs, closedSockets);
    await webhook.close();
    return {
      bench: 'answer-webhook',
      conditions: { rate, durationMs, sockets, node: process.version, loadGenerator: 'same process' },
      webhook: measured,
      bare,
      saturation: { webhook: webhookMax, bare: bareMax, ratio: Math.round((webhookMax.rps / Math.max(1, bareMax.rps)) * 1000) / 1000 },
    };
  } finally {
    for (const s of servers) await new Promise((resolve) => s.close(resolve));
    await nc.drain().catch(() => undefined);
    await natsServer?.dispose();
  }
}

// `npm run bench`: print one JSON line (argv: rate, duration in ms).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [rate, durationMs] = process.argv.slice(2).map(Number);
  const result = await benchAnswerWebhook({
    ...(rate ? { rate } : {}),
    ...(durationMs ? { durationMs } : {}),
  });
  console.log(JSON.stringify(result));
}
