import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import { encodeContactVars, type BroadcastSpec } from '@clarion/contracts';
import { listen } from '@clarion/http';
import { createLogger } from '@clarion/logging';
import { connectNats, ensureBuckets, ensureStreams, jetstream, startNatsServer, type NatsServerHandle } from '@clarion/nats';
import { createWebhookApp } from './app.js';
import { runLoad, type LoadFigures, type SaturationFigures } from './load-generator.js';
import { answerNcco } from './ncco.js';

export type { LoadFigures, SaturationFigures } from './load-generator.js';

/** Options of the answer-webhook benchmark (all bounded: loopback only, fixed duration). */
export interface AnswerBenchOptions {
  /** Offered load, requests per second (open loop). Default 2000. */
  rate?: number;
  /** Measured duration per target in ms (after a 1 s warm-up), in slices of about 1 s. Default 5000. */
  durationMs?: number;
  /** Keep-alive sockets. Default 64. */
  sockets?: number;
  /** An existing NATS to use; otherwise a private nats-server is started and removed. */
  natsUrl?: string;
}

/** One JSON-able result: the webhook's figures next to a bare Koa handler's, same run. */
export interface AnswerBenchResult {
  bench: 'answer-webhook';
  conditions: { rate: number; durationMs: number; sockets: number; node: string; loadGenerator: 'worker thread'; rounds: number };
  /** At the fixed offered load (open loop). */
  webhook: LoadFigures;
  bare: LoadFigures;
  /**
   * At saturation (closed loop); `ratio` = webhook rps / bare rps over all rounds (target ≥ 0.8),
   * `ratioRange` the lowest and highest ratio of a single round (how noisy the machine was).
   */
  saturation: { webhook: SaturationFigures; bare: SaturationFigures; ratio: number; ratioRange: [number, number] };
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
    // The load generator runs on a worker thread (its own event loop, so its own core) with the same
    // keep-alive connection settings for both servers, and alternates between them in ~1 s slices
    // (ABBA), so that other load on the machine hits both alike. It used to run in the servers' thread,
    // one server after the other, taking the CPU it measured (and the bare handler lost less of it).
    const rounds = Math.max(1, Math.round(durationMs / 1000));
    const sliceMs = durationMs / rounds;
    // The webhook gets the URLs the Voice API requests: ours (b, c, a, and v with each contact's own
    // variables) and, appended by the Voice API to a GET answer_url, the call's own parameters (as
    // voice-sim sends them), which the handler must skip.
    const vOf = (i: number) => encodeContactVars({ name: `Ada ${i}`, vars: { area: 'Riverside' } });
    const vonage = (i: number) => {
      const n = String(i).padStart(4, '0');
      const call = `uuid=63f61863-4a51-4f6b-86e1-46edebcf${n}&conversation_uuid=CON-f972836a-550f-45fa-956c-12a2ab5b${n}`;
      return `to=14155550100&from=14155550199&${call}&region_url=https%3A%2F%2Fapi-us-3.vonage.com&endpoint_type=phone`;
    };
    // Both servers get the same requests (until 2026-12-04 the bare one got a bare path, so the
    // ratio also charged our handler for the HTTP parser reading the Voice API's longer URLs).
    const paths = Array.from({ length: 1000 }, (_, i) => `/webhooks/answer?b=bench&c=c${i}&a=1&v=${vOf(i)}&${vonage(i)}`);
    const targets = [
      { port: portOf(bareServer), paths },
      { port: portOf(webhookServer), paths },
    ];
    const open = await runLoad({ mode: 'open', rate, targets, sockets, warmupMs: 1000, sliceMs, rounds });
    // Closed loop with fewer sockets than the open loop: enough to saturate one event loop.
    const closed = await runLoad({ mode: 'closed', targets, sockets: Math.min(sockets, 16), warmupMs: 1000, sliceMs, rounds });
    const [bare, measured] = open.figures as [LoadFigures, LoadFigures];
    const [bareMax, webhookMax] = closed.figures as [SaturationFigures, SaturationFigures];
    const ratioOf = (webhookRps: number, bareRps: number) => Math.round((webhookRps / Math.max(1, bareRps)) * 1000) / 1000;
    const roundRatios = closed.roundRps.map(([b = 0, w = 0]) => ratioOf(w, b));
    await webhook.close();
    return {
      bench: 'answer-webhook',
      conditions: { rate, durationMs, sockets, node: process.version, loadGenerator: 'worker thread', rounds },
      webhook: measured,
      bare,
      saturation: {
        webhook: webhookMax,
        bare: bareMax,
        ratio: ratioOf(webhookMax.rps, bareMax.rps),
        ratioRange: [Math.min(...roundRatios), Math.max(...roundRatios)],
      },
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
