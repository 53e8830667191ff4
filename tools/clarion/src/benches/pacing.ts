import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, requestBroadcast } from '../client.js';
import { fictionalNumbers } from '../fixtures.js';
import { startStack } from '../stack.js';
import type { Bench } from './types.js';

interface SimCall {
  created_at: string;
}
interface SimStats {
  calls_placed: number;
  rejected_429: number;
  max_calls_in_rolling_second: number;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

/** Pacing across dialer replicas against voice-sim enforcing the same limit (DESIGN.md §8). */
export const run: Bench = async () => {
  const replicas = 3;
  const rate = 20;
  const contacts = 1200;
  const stateDir = mkdtempSync(join(tmpdir(), 'clarion-bench-pacing-'));
  const stack = await startStack({ stateDir, accountCps: rate, simCps: rate, timeScale: 0.01, dialerReplicas: replicas, logLevel: 'warn' });
  try {
    const nc = await connect(stack.natsUrl, 'bench');
    const requestedAt = Date.now();
    const reply = await requestBroadcast(nc, {
      name: 'bench pacing',
      message: { text: 'Pacing benchmark.' },
      audience: { numbers: fictionalNumbers(contacts) },
      retry: { maxAttempts: 1 },
    });
    await nc.close();
    if (!reply.ok) throw new Error(reply.error.message);
    const sim = stack.url('voice-sim');
    const stats = async () => (await (await fetch(`${sim}/_sim/stats`)).json()) as SimStats;
    const finished = await waitUntil(async () => (await stats()).calls_placed >= contacts, ((contacts / rate) * 2 + 30) * 1000);
    const { calls } = (await (await fetch(`${sim}/_sim/calls`)).json()) as { calls: SimCall[] };
    const times = calls.map((c) => Date.parse(c.created_at)).sort((a, b) => a - b);
    const first = times[0] ?? NaN;
    const last = times[times.length - 1] ?? NaN;
    const final = await stats();
    return {
      replicas,
      targetRate: rate,
      contacts,
      finished,
      callsPlaced: final.calls_placed,
      achievedRate: Number(((times.length - 1) / ((last - first) / 1000)).toFixed(3)),
      maxCallsInRollingSecond: final.max_calls_in_rolling_second,
      rejected429: final.rejected_429,
      firstCallAfterMs: first - requestedAt,
      completionSeconds: Number(((last - requestedAt) / 1000).toFixed(2)),
      idealSeconds: contacts / rate,
    };
  } finally {
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
};

