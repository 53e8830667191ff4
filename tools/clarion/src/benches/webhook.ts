import { benchAnswerWebhook } from '@clarion/webhook';
import type { Bench } from './types.js';

/**
 * Answer webhook vs a bare Koa handler returning a constant NCCO, same run (DESIGN.md §8: p99 ≤ 10 ms
 * at 2,000 req/s; throughput at saturation ≥ 0.8 × the bare handler's). Args: [rate] [durationMs].
 * The load generator runs on a worker thread and alternates between the two servers in ~1 s slices
 * (before 2026-12-03 it ran in the servers' own thread, one server after the other).
 */
export const run: Bench = async (args) => {
  const [rate, durationMs] = args.map(Number);
  const result = await benchAnswerWebhook({
    ...(rate ? { rate } : {}),
    ...(durationMs ? { durationMs } : {}),
  });
  const { webhook, bare, saturation, conditions } = result;
  return {
    offeredRps: conditions.rate,
    durationMs: conditions.durationMs,
    sockets: conditions.sockets,
    loadGenerator: conditions.loadGenerator,
    rounds: conditions.rounds,
    webhook,
    bare,
    saturation,
    p99TargetMs: 10,
    ratioTarget: 0.8,
    meetsP99: webhook.p99Ms <= 10 && webhook.errors === 0,
    meetsRatio: saturation.ratio >= 0.8,
  };
};
