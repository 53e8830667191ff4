import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, requestBroadcast } from '../client.js';
import { fictionalNumbers } from '../fixtures.js';
import { startStack, type Stack } from '../stack.js';
import type { Bench } from './types.js';

/** Resident and peak resident memory of a process in MB, from /proc (Linux); undefined elsewhere or when gone. */
function memoryOf(pid: number | undefined): { rss: number; hwm: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Largest peak RSS (MB) seen per service process, sampled and from the kernel's high-water mark. */
function peakTracker(stack: Stack) {
  const peaks = new Map<string, number>();
  const sample = () => {
    for (const list of Object.values(stack.services)) {
      for (const service of list) {
        const m = memoryOf(service.pid());
        if (m) peaks.set(service.name, Math.max(peaks.get(service.name) ?? 0, m.rss, m.hwm));
      }
    }
  };
  const timer = setInterval(sample, 250);
  return {
    stop: () => {
      sample();
      clearInterval(timer);
      return Object.fromEntries([...peaks].map(([name, mb]) => [name, Number(mb.toFixed(1))]));
    },
  };
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

/**
 * The whole pipeline with no provider limit (voice-sim CPS 0, instant calls): calls per second from the
 * request until the reporter holds every outcome, and peak RSS per service. Args: [contacts=20000] [dialers=1].
 * Audiences above 4,800 (the fictional-number pool) are split into several broadcasts sent at once.
 */
export const run: Bench = async (args) => {
  const contacts = Number(args[0] ?? 20_000);
  const dialers = Number(args[1] ?? 1);
  if (!(contacts > 0 && dialers > 0)) throw new RangeError('usage: pipeline [contacts] [dialers]');
  const accountCps = 5000;
  const stateDir = mkdtempSync(join(tmpdir(), 'clarion-bench-pipeline-'));
  const stack = await startStack({ stateDir, accountCps, simCps: 0, timeScale: 0, dialerReplicas: dialers, logLevel: 'warn', seed: 'pipeline' });
  const memory = peakTracker(stack);
  try {
    const sizes: number[] = [];
    for (let left = contacts; left > 0; left -= 4800) sizes.push(Math.min(4800, left));
    const nc = await connect(stack.natsUrl, 'bench-pipeline');
    const requestedAt = Date.now();
    const replies = await Promise.all(
      sizes.map((size, i) =>
        requestBroadcast(nc, {
          name: `bench pipeline ${i + 1}`,
          message: { text: 'Pipeline benchmark.' },
          audience: { numbers: fictionalNumbers(size) },
          retry: { maxAttempts: 1 },
        }),
      ),
    );
    const acceptedAt = Date.now();
    await nc.close();
    const ids = replies.map((r) => {
      if (!r.ok) throw new Error(r.error.message);
      return r.broadcastId;
    });
    const reporter = stack.url('reporter');
    const sim = stack.url('voice-sim');
    const headers = { authorization: `Bearer ${stack.secrets.apiToken}` };
    let lastPlacedAt = NaN;
    const timeoutMs = Math.max(120_000, contacts * 20);
    const completed = await waitUntil(async () => {
      const stats = (await (await fetch(`${sim}/_sim/stats`)).json()) as { calls_placed: number };
      if (Number.isNaN(lastPlacedAt) && stats.calls_placed >= contacts) lastPlacedAt = Date.now();
      for (const id of ids) {
        const summary = (await (await fetch(`${reporter}/v1/broadcasts/${id}`, { headers })).json()) as { status: string };
        if (summary.status !== 'completed') return false;
      }
      return true;
    }, timeoutMs);
    const doneAt = Date.now();
    const stats = (await (await fetch(`${sim}/_sim/stats`)).json()) as { calls_placed: number; rejected_429: number };
    const seconds = (doneAt - requestedAt) / 1000;
    const peakRssMB = memory.stop();
    return {
      contacts,
      broadcasts: ids.length,
      dialers,
      accountCps,
      simCps: 0,
      timeScale: 0,
      completed,
      callsPlaced: stats.calls_placed,
      rejected429: stats.rejected_429,
      acceptSeconds: (acceptedAt - requestedAt) / 1000,
      placedSeconds: Number.isNaN(lastPlacedAt) ? null : (lastPlacedAt - requestedAt) / 1000,
      seconds,
      callsPerSecondEndToEnd: completed ? Number((contacts / seconds).toFixed(1)) : null,
      peakRssMB,
      maxPeakRssMB: Math.max(...Object.values(peakRssMB)),
    };
  } finally {
    memory.stop();
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
};
