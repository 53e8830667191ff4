#!/usr/bin/env node
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, requestBroadcast } from './client.js';
import { attemptOf } from './demo.js';
import { fictionalNumbers } from './fixtures.js';
import { startStack, type Stack } from './stack.js';
import { startRoundRobinProxy } from './chaos/proxy.js';

// `npm run chaos [-- contacts [rate [experiment,…]]]`: the whole system with replicas, faults injected, ground truth compared.
// Loopback only, bounded in time (every experiment has a deadline; the whole run stops by itself).

interface SimCall {
  uuid: string;
  to: string;
  event_url: string;
  outcome: string;
  created_at: string;
  /** voice-sim's delivery record of each event (after its retry) and of the answer webhook. */
  events?: { status: string; delivered: boolean; http_status: number | null; attempts: number; sent_at: string | null; error?: string }[];
  answer?: { ok: boolean; attempts: number; http_status: number | null; error?: string } | null;
}
interface SimStats {
  calls_placed: number;
  rejected_429: number;
  max_calls_in_rolling_second: number;
}
interface ContactView {
  id: string;
  state: string;
  final: boolean;
  attempts: number;
}

/** One fault run: what voice-sim is told to do, and what is done to the processes, over time. */
interface Experiment {
  name: string;
  what: string;
  sim?: Record<string, unknown>;
  inject?: (ctx: FaultContext) => Promise<void>;
}

interface FaultContext {
  stack: Stack;
  /** Seconds the broadcast should take without faults (contacts / rate). */
  ideal: number;
  /** Wait until `fraction` of the ideal duration has passed since the request. */
  at(fraction: number): Promise<void>;
  note(fault: string): void;
  random(): number;
  setSim(config: Record<string, unknown>): Promise<void>;
}

/** voice-sim's outcome → the final state Clarion must report for that contact. */
const EXPECTED_STATE: Record<string, string> = {
  answered_ack: 'acknowledged',
  answered: 'answered',
  machine: 'voicemail',
  busy: 'busy',
  no_answer: 'no_answer',
  timeout: 'no_answer',
  failed: 'failed',
  rejected: 'rejected',
  invalid_number: 'invalid_number',
};

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A small seeded PRNG (mulberry32), so a run's choice of victims repeats. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function killDialer(ctx: FaultContext, downMs: number): Promise<void> {
  const dialers = ctx.stack.services.dialer;
  const victim = dialers[Math.floor(ctx.random() * dialers.length)]!;
  ctx.note(`SIGKILL ${victim.name}`);
  await victim.kill('SIGKILL');
  await pause(downMs);
  await victim.restart();
}

const crashes = async (ctx: FaultContext) => {
  const { stack } = ctx;
  await ctx.at(0.1);
  await killDialer(ctx, 500);
  await ctx.at(0.25);
  const reporter = stack.services.reporter[0]!;
  ctx.note(`SIGKILL ${reporter.name}`);
  await reporter.kill('SIGKILL');
  const webhook = stack.services.webhook[stack.services.webhook.length - 1]!;
  ctx.note(`SIGKILL ${webhook.name}`);
  await webhook.kill('SIGKILL');
  await pause(2000);
  await Promise.all([reporter.restart(), webhook.restart()]);
  await ctx.at(0.45);
  await killDialer(ctx, 500);
  await ctx.at(0.6);
  ctx.note('restart nats-server');
  await stack.nats?.restart();
  await ctx.at(0.8);
  await killDialer(ctx, 500);
};

const providerFaults = async (ctx: FaultContext) => {
  await ctx.at(0.3);
  ctx.note('voice-sim CPS halved for 3 s (429s)');
  await ctx.setSim({ cps: RATE / 2 });
  await pause(3000);
  await ctx.setSim({ cps: RATE });
};

const PROVIDER_SIM = { faults: { create5xxRate: 0.05, timeoutAfterPlaceRate: 0.03, timeoutAfterPlaceMode: 'reset' } };
const EVENT_SIM = { faults: { duplicateEventRate: 0.2, reorderRate: 0.2, delayEventRate: 0.1, delayEventMs: 400 } };

const EXPERIMENTS: Experiment[] = [
  { name: 'baseline', what: 'no faults (the reference time)' },
  { name: 'crashes', what: 'SIGKILL a random dialer 3×, the reporter, a webhook replica; restart nats-server', inject: crashes },
  { name: 'provider', what: 'voice-sim 5% 5xx, 3% placed-then-reset creates, CPS halved for 3 s (429s)', sim: PROVIDER_SIM, inject: providerFaults },
  { name: 'events', what: 'voice-sim duplicates 20% and reorders 20% of events, delays 10% by 400 ms', sim: EVENT_SIM },
  {
    name: 'everything',
    what: 'all of the above at once',
    sim: { faults: { ...PROVIDER_SIM.faults, ...EVENT_SIM.faults } },
    inject: async (ctx) => {
      await Promise.all([crashes(ctx), providerFaults(ctx)]);
    },
  },
];

const args = process.argv.slice(2);
const CONTACTS = Number(args[0] ?? 2000);
const RATE = Number(args[1] ?? 100);
/** Run only these experiments (comma list); without `baseline` among them, extraSeconds is null. */
const ONLY = args[2]?.split(',');
const MAX_ATTEMPTS = 2;
/** The whole run stops by itself within this; an experiment starts only if its own deadline fits. */
const RUN_DEADLINE_MS = 15 * 60_000;
/**
 * An experiment's deadline: four times the ideal duration, plus the longest an attempt may spend
 * re-placing ambiguous creates (the dialer's AMBIGUOUS_PLACE_LIMIT × AMBIGUITY_TIMEOUT_MS, 3 × 60 s by
 * default) before it ends failed and is retried, plus a minute.
 */
const HEAL_MS = 3 * 60_000 + 60_000;
const EXPERIMENT_DEADLINE_MS = (CONTACTS / RATE) * 4 * 1000 + HEAL_MS;
/** Starting and stopping a stack of 11 processes. */
const STACK_OVERHEAD_MS = 20_000;
const runStarted = Date.now();

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

async function reporterContacts(stack: Stack, broadcastId: string): Promise<ContactView[]> {
  const out: ContactView[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page: { items: ContactView[]; nextCursor: string | null } = await json(
      `${stack.services.reporter[0]!.url}/v1/broadcasts/${broadcastId}/contacts?limit=1000${query}`,
      { headers: { authorization: `Bearer ${stack.secrets.apiToken}` } },
    );
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

async function runExperiment(experiment: Experiment, baselineSeconds: number | undefined): Promise<Record<string, unknown>> {
  const stateDir = mkdtempSync(join(tmpdir(), `clarion-chaos-${experiment.name}-`));
  let stack: Stack | undefined;
  const proxy = await startRoundRobinProxy(() => stack?.services.webhook.map((w) => w.port) ?? []);
  const faults: string[] = [];
  try {
    // Two reporters share the durable consumers, so they need one shared store: MongoDB only.
    const reporters = process.env.MONGO_URL ? 2 : 1;
    stack = await startStack({
      stateDir,
      accountCps: RATE,
      simCps: RATE,
      timeScale: 0.01,
      seed: 'chaos',
      dialerReplicas: 3,
      replicas: { webhook: 2, contacts: 2, reporter: reporters },
      webhookPublicUrl: proxy.url,
      logLevel: 'warn',
      ...(process.env.MONGO_URL ? { mongoUrl: process.env.MONGO_URL } : {}),
    });
    const sim = stack.url('voice-sim');
    const setSim = async (config: Record<string, unknown>) => {
      await json(`${sim}/_sim/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
    };
    if (experiment.sim) await setSim(experiment.sim);

    const nc = await connect(stack.natsUrl, 'chaos');
    const requestedAt = Date.now();
    const reply = await requestBroadcast(nc, {
      name: `chaos ${experiment.name}`,
      idempotencyKey: `chaos-${experiment.name}`,
      message: { text: 'Chaos drill. Press 1 to confirm.' },
      audience: { numbers: fictionalNumbers(CONTACTS) },
      acknowledgement: {},
      retry: { maxAttempts: MAX_ATTEMPTS, delaySeconds: 1, on: ['busy', 'no_answer', 'failed'] },
      pacing: { callsPerSecond: RATE },
    });
    if (!reply.ok) throw new Error(`broadcast refused: ${reply.error.message}`);
    const broadcastId = reply.broadcastId;
    const ideal = CONTACTS / RATE;
    const ctx: FaultContext = {
      stack,
      ideal,
      at: async (fraction) => {
        await pause(Math.max(0, requestedAt + fraction * ideal * 1000 - Date.now()));
      },
      note: (fault) => faults.push(`${((Date.now() - requestedAt) / 1000).toFixed(1)}s ${fault}`),
      random: seeded(CONTACTS * 31 + experiment.name.length),
      setSim,
    };
    const injecting = (experiment.inject?.(ctx) ?? Promise.resolve()).catch((error: unknown) => {
      faults.push(`fault injection failed: ${error instanceof Error ? error.message : String(error)}`);
    });

    // Completed = the reporter has every contact final. Polls survive the reporter's own crash.
    const deadline = Math.min(requestedAt + EXPERIMENT_DEADLINE_MS, runStarted + RUN_DEADLINE_MS);
    let completedAt: number | undefined;
    while (Date.now() < deadline) {
      const summary = await json<{ status: string }>(`${stack.services.reporter[0]!.url}/v1/broadcasts/${broadcastId}`, {
        headers: { authorization: `Bearer ${stack.secrets.apiToken}` },
      }).catch(() => undefined);
      if (summary?.status === 'completed') {
        completedAt = Date.now();
        break;
      }
      await pause(250);
    }
    await injecting;
    await nc.close();

    const [{ calls }, stats, contacts] = await Promise.all([
      json<{ calls: SimCall[] }>(`${sim}/_sim/calls`),
      json<SimStats>(`${sim}/_sim/stats`),
      reporterContacts(stack, broadcastId),
    ]);
    return { experiment: experiment.name, what: experiment.what, broadcastId, accepted: reply.counts.accepted, requestedAt, completedAt, baselineSeconds, faults, ...compare(calls, stats, contacts, reply.counts.accepted), proxied: Object.fromEntries(proxy.handed), proxyRetried: proxy.retried };
  } finally {
    await stack?.stop().catch(() => undefined);
    await proxy.close();
    // CLARION_CHAOS_KEEP=1 keeps each experiment's logs, NATS data and voice-sim's call log for a post-mortem.
    if (process.env.CLARION_CHAOS_KEEP) process.stderr.write(`chaos: ${experiment.name} kept in ${stateDir}\n`);
    else rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Ground truth (voice-sim) against the reporter, contact by contact. */
function compare(calls: SimCall[], stats: SimStats, contacts: ContactView[], accepted: number) {
  const callsOf = new Map<string, { attempt: number; outcome: string; undelivered: string[] }[]>();
  const perAttempt = new Map<string, number>();
  for (const call of calls) {
    const id = attemptOf(call.event_url);
    if (!id) continue;
    const key = `${id.contactId}#${id.attempt}`;
    perAttempt.set(key, (perAttempt.get(key) ?? 0) + 1);
    const list = callsOf.get(id.contactId) ?? [];
    // What the provider gave up delivering (after its own retry): the reason behind a wrong outcome.
    const undelivered = (call.events ?? []).filter((e) => !e.delivered).map((e) => `${e.status}@${e.sent_at?.slice(11, 23) ?? '?'}:${e.http_status ?? e.error ?? 'no reply'}×${e.attempts}`);
    if (call.answer && !call.answer.ok) undelivered.push(`answer:${call.answer.http_status ?? call.answer.error ?? 'no reply'}×${call.answer.attempts}`);
    list.push({ attempt: id.attempt, outcome: call.outcome, undelivered });
    callsOf.set(id.contactId, list);
  }
  const reported = new Map(contacts.map((c) => [c.id, c]));
  let notFinal = 0;
  let neverCalled = 0;
  let outcomesLost = 0;
  let outcomesWrong = 0;
  const examples: string[] = [];
  for (const contact of contacts) {
    const placed = callsOf.get(contact.id) ?? [];
    if (!contact.final) notFinal += 1;
    if (placed.length === 0) {
      neverCalled += 1;
      if (examples.length < 5) examples.push(`${contact.id}: never called, reported ${contact.state}`);
      continue;
    }
    const distinctAttempts = new Set(placed.map((p) => p.attempt)).size;
    if (contact.attempts < distinctAttempts) {
      outcomesLost += 1;
      if (examples.length < 5) examples.push(`${contact.id}: ${distinctAttempts} attempts placed, ${contact.attempts} reported`);
    }
    const last = placed.reduce((a, b) => (b.attempt > a.attempt ? b : a));
    const expected = EXPECTED_STATE[last.outcome];
    if (contact.final && expected && contact.state !== expected) {
      outcomesWrong += 1;
      const lost = last.undelivered.length > 0 ? ` (voice-sim could not deliver ${last.undelivered.join(', ')})` : '';
      if (examples.length < 5) examples.push(`${contact.id}: voice-sim ${last.outcome}, reported ${contact.state}${lost}`);
    }
  }
  const unknownToReporter = [...callsOf.keys()].filter((id) => !reported.has(id)).length;
  const missed = accepted - contacts.length + neverCalled + notFinal;
  return {
    callsPlaced: stats.calls_placed,
    contactsReported: contacts.length,
    missed,
    notFinal,
    neverCalled,
    calledTwiceForOneAttempt: [...perAttempt.values()].filter((n) => n > 1).length,
    doubled: [...perAttempt].filter(([, n]) => n > 1).slice(0, 5).map(([key]) => key),
    outcomesLost: outcomesLost + unknownToReporter,
    outcomesWrong,
    rejected429: stats.rejected_429,
    maxCallsInRollingSecond: stats.max_calls_in_rolling_second,
    examples,
  };
}

async function main(): Promise<number> {
  if (!(CONTACTS > 0 && CONTACTS <= 4800 && RATE > 0)) {
    process.stderr.write(`usage: npm run chaos -- [contacts ≤ 4800] [calls per second] [${EXPERIMENTS.map((e) => e.name).join(',')}]\n`);
    return 2;
  }
  const results: Record<string, unknown>[] = [];
  let baselineSeconds: number | undefined;
  for (const experiment of EXPERIMENTS) {
    if (ONLY && !ONLY.includes(experiment.name)) continue;
    if (Date.now() + STACK_OVERHEAD_MS + EXPERIMENT_DEADLINE_MS > runStarted + RUN_DEADLINE_MS) {
      // Cut short, it would report faults' effects as missed contacts: skip it, and fail the run.
      process.stderr.write(`chaos: out of time, skipping ${experiment.name} (run it alone: npm run chaos -- ${CONTACTS} ${RATE} ${experiment.name})\n`);
      results.push({ chaos: experiment.name, skipped: true, completed: false });
      continue;
    }
    const result = await runExperiment(experiment, baselineSeconds);
    const { requestedAt, completedAt } = result as { requestedAt: number; completedAt?: number };
    const seconds = completedAt === undefined ? null : (completedAt - requestedAt) / 1000;
    if (experiment.name === 'baseline' && seconds !== null) baselineSeconds = seconds;
    const line = {
      chaos: experiment.name,
      at: new Date().toISOString(),
      contacts: CONTACTS,
      rate: RATE,
      dialers: 3,
      completed: completedAt !== undefined,
      seconds,
      extraSeconds: seconds !== null && baselineSeconds !== undefined ? Number((seconds - baselineSeconds).toFixed(2)) : null,
      ...result,
    };
    delete (line as Record<string, unknown>).requestedAt;
    delete (line as Record<string, unknown>).completedAt;
    delete (line as Record<string, unknown>).baselineSeconds;
    results.push(line);
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  const columns = ['chaos', 'completed', 'seconds', 'extraSeconds', 'callsPlaced', 'missed', 'calledTwiceForOneAttempt', 'outcomesLost', 'outcomesWrong', 'rejected429'];
  const rows = [columns, ...results.map((r) => columns.map((c) => String(r[c] ?? '—')))];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
  const bad = results.some((r) => !r.completed || r.missed !== 0 || r.calledTwiceForOneAttempt !== 0 || r.outcomesLost !== 0 || r.outcomesWrong !== 0);
  return bad ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
