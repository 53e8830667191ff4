import { setTimeout as sleep } from 'node:timers/promises';
import { ExponentialBackoff, BrokenCircuitError, ConsecutiveBreaker, circuitBreaker, handleAll, handleWhen, retry, type IBackoff } from 'cockatiel';
import {
  ACCOUNT_SIGNAL,
  AttemptEvent,
  BroadcastControlState,
  BroadcastSpec,
  CallEvent,
  CONSUMERS,
  ContactFinal,
  DialJob,
  STREAMS,
  attemptEventSubject,
  broadcastEventSubject,
  classifyAttempt,
  outcomeRank,
  contactFinalSubject,
  decodeJson,
  dialJobSubject,
  dialRetrySubject,
  type AttemptOutcome,
  type BroadcastEvent,
  type FinalState,
} from '@clarion/contracts';
import {
  ensureConsumer,
  publishJson,
  SECOND_NS,
  startConsumeLoop,
  type ConsumeLoop,
  type Disposition,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type KV,
  type NatsConnection,
} from '@clarion/nats';
import { createSharedPacer, type Pacer } from '@clarion/pacer';
import { toVoiceNumber, VoiceApiError, type CreateCallBody, type CreatedCall, type VoiceClient } from '@clarion/voice-client';
import type { Logger } from '@clarion/logging';
import { GateClosedError, PriorityGate } from './gate.js';
import { Ledger, type LedgerEntry, type LedgerSignal, type Versioned } from './ledger.js';
import { CallSlots } from './slots.js';
import { webhookUrls } from './urls.js';
import { checkDueAt, verdictOf, type StatusVerdict } from './watchdog.js';
import { msUntilWindowOpens } from './window.js';

/** Tunables of one dialer replica (see config.ts for the variables behind them). */
export interface DialerSettings {
  webhookPublicUrl: string;
  accountCps: number;
  accountMaxConcurrent: number;
  defaultFrom?: string | undefined;
  pacerSafetyFactor?: number;
  /** Hold starts on the account's actual starts over the last rolling second (plus margin). */
  pacerWindowGuard?: boolean;
  pacerWindowMarginMs?: number;
  /** How long an unanswered create may still reach the provider: the Voice API request timeout. */
  pacerOutstandingBoundMs?: number;
  ambiguityTimeoutMs: number;
  claimGraceMs: number;
  /** A call slot counts as released this long after it was taken, even without a final event. */
  callSlotTimeoutMs: number;
  breakerCooldownMs: number;
  ringingTimerSeconds: number;
  lengthTimerSeconds: number;
  /** First delay for a job re-queued after a 429 (doubles with jitter per redelivery). */
  rateLimitBackoffMs?: number;
  /** After a final status, wait this long for out-of-order events before fixing the outcome. */
  outcomeSettleMs?: number;
  /** Ack wait of the dial consumers (ms); handlers heartbeat well inside it. */
  ackWaitMs?: number;
  /** Re-queues after a 429 or an unreachable API one attempt may take before it ends `failed`. */
  retryBudget?: number;
  /**
   * A placed attempt without a final event for this long is checked with `GET /v1/calls/{uuid}`
   * (default: ringing timer + length timer + 60 s, the longest a call can last plus a margin).
   */
  attemptResultTimeoutMs?: number;
  /** How often every replica looks through the ledger of its known broadcasts for overdue attempts (default 30 s). */
  watchdogScanMs?: number;
  /** Wait before checking again a call still in progress, or one the API could not report on (default 60 s). */
  statusRecheckMs?: number;
  /** Status checks of one attempt before it is finalised `unknown` (default 5). */
  statusCheckLimit?: number;
  /** Creates of one attempt that stayed ambiguous before it ends `failed` (retry policy applies) instead of being re-placed (default 3). */
  ambiguousPlaceLimit?: number;
  /** After a cancel, wait this long (every replica has seen it and stopped claiming) before sweeping parked jobs (default 3 s). */
  cancelSweepGraceMs?: number;
}

export interface DialerDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  buckets: { broadcasts: KV; control: KV; ledger: KV; pacer: KV; slots: KV };
  voice: VoiceClient;
  logger: Logger;
  settings: DialerSettings;
  clock?: () => number;
  /** Account pacer; defaults to the shared GCRA in the `pacer` bucket at ACCOUNT_CPS. */
  pacer?: Pacer;
  /** Identifies this replica in claims. */
  replicaId?: string;
}

/** Counters for /metrics and tests. */
export interface DialerStats {
  placed: number;
  ambiguous: number;
  rateLimited: number;
  refused: number;
  /** Claims taken over by another delivery while this replica waited for the pacer: not sent here. */
  claimsLost: number;
  /** Times the account breaker opened (the Voice API refused the credentials, number or account). */
  breakerOpenings: number;
  /** 1 while the account breaker is open and dialling is halted, else 0. */
  breakerOpen: number;
  /** Call slots held by attempts this replica took them for (released by whichever replica sees the end). */
  activeCalls: number;
  broadcasts: number;
}

export interface Dialer {
  start(): Promise<void>;
  /** Stop pulling, let in-flight attempts finish, stop consumers and watches. */
  stop(): Promise<void>;
  isReady(): boolean;
  stats(): DialerStats;
}

type ControlStatus = BroadcastControlState['status'];

interface Runtime {
  id: string;
  spec: BroadcastSpec;
  control?: { state: BroadcastControlState; revision: number };
  pacer?: Pacer;
  /** Open message streams of this broadcast's sources, closed on pause. */
  iterators: Set<{ close(): Promise<void | Error> }>;
  wake: Set<() => void>;
  sources: Promise<void>[];
  /** Aborted whenever the broadcast stops running, so its waiting jobs leave the gate and the pacer. */
  notRunning: AbortController;
  /** Ledger keys the watchdog found final and followed up (never looked at again by this replica). */
  settledKeys: Set<string>;
  /** Last scan found nothing open and no job waiting: scanned only every tenth round. */
  idle: boolean;
}

const PLACING_STATES = new Set<LedgerEntry['state']>(['claimed', 'ambiguous', 'released']);
/** A broadcast pacer's grant counts as outstanding (holding its place in the rolling second) at most this long. */
const BROADCAST_OUTSTANDING_BOUND_MS = 60_000;

/** The watchdog ends a still-ambiguous attempt `unknown` no sooner than this after its ambiguity timeout. */
const AMBIGUOUS_NET_MIN_MS = 5 * 60_000;

/** Best-first order used to pick a contact's final state from its attempts. */
const BEST: AttemptOutcome[] = ['acknowledged', 'answered', 'voicemail', 'busy', 'no_answer', 'rejected', 'failed', 'invalid_number', 'unknown'];

/** Create one dialer replica; several may run in one process (tests) or across hosts. */
export function createDialer(deps: DialerDeps): Dialer {
  const { nc, js, jsm, buckets, voice, logger, settings } = deps;
  const clock = deps.clock ?? Date.now;
  const replicaId = deps.replicaId ?? `dialer-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const ledger = new Ledger(buckets.ledger);
  const accountPacer =
    deps.pacer ??
    createSharedPacer({
      kv: buckets.pacer,
      key: 'account',
      ratePerSecond: settings.accountCps,
      // A 429 under GCRA spacing comes from start jitter, not from a rate too high: hold briefly, not 1 s.
      penaltyMs: 300,
      ...(settings.pacerSafetyFactor === undefined ? {} : { safetyFactor: settings.pacerSafetyFactor }),
      ...(settings.pacerWindowGuard === undefined ? {} : { rollingWindowGuard: settings.pacerWindowGuard }),
      ...(settings.pacerWindowMarginMs === undefined ? {} : { windowMarginMs: settings.pacerWindowMarginMs }),
      ...(settings.pacerOutstandingBoundMs === undefined ? {} : { outstandingBoundMs: settings.pacerOutstandingBoundMs }),
    });
  const ackWaitMs = settings.ackWaitMs ?? 30_000;
  const settleMs = settings.outcomeSettleMs ?? 1000;
  /**
   * The provider sends the status that says how a call went (busy, answered, failed…) before its
   * `completed`; a `completed` with nothing else means those are late (delayed, reordered, retried):
   * wait ten settle windows for them before the attempt ends `unknown`, which is not retried.
   */
  const settleFor = (outcome: AttemptOutcome): number => (outcome === 'unknown' ? settleMs * 10 : settleMs);
  // A closed consume() leaves its last pull request open at the server until it expires; anything
  // redelivered to it meanwhile is lost until ack_wait. Short pulls, and jobs handed back on pause or
  // stop are delayed past their expiry, so they reach a live puller.
  const pullExpiresMs = 2000;
  const handBackMs = pullExpiresMs + 500;
  // At most about one second of pacer backlog per replica, so a critical job never waits behind much.
  const lookahead = Math.max(2, Math.min(256, Math.ceil(settings.accountCps)));
  const perSource = Math.max(1, Math.min(64, lookahead));
  const runtimes = new Map<string, Runtime>();
  const stats: DialerStats = { placed: 0, ambiguous: 0, rateLimited: 0, refused: 0, claimsLost: 0, breakerOpenings: 0, breakerOpen: 0, activeCalls: 0, broadcasts: 0 };
  const shutdown = new AbortController();
  const background: Promise<unknown>[] = [];
  const watchers: { stop(): void }[] = [];
  const inFlight = new Set<Promise<unknown>>();
  let eventsLoop: ConsumeLoop | undefined;
  let ready = false;
  let stopping = false;

  // Concurrency caps are shared by all replicas (call-slots bucket); the local gate only bounds the
  // jobs being claimed, paced and created at once (critical first), about a second of pacer backlog.
  const slots = new CallSlots({
    kv: buckets.slots,
    accountCap: settings.accountMaxConcurrent,
    timeoutMs: settings.callSlotTimeoutMs,
    clock,
    onError: (error, context) => logger.warn({ err: error }, context),
  });
  const gate = new PriorityGate(lookahead);

  /** Writes that must not be lost to a NATS restart: about two minutes of tries, backing off to 5 s. */
  const recordRetry = retry(handleAll, { maxAttempts: 30, backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 5000 }) });
  const breaker = circuitBreaker(
    handleWhen((e) => e instanceof VoiceApiError && ['unauthorized', 'forbidden', 'payment_required'].includes(e.code)),
    { halfOpenAfter: settings.breakerCooldownMs, breaker: new ConsecutiveBreaker(1) },
  );
  /** Why the account breaker is open (undefined while closed). */
  let breakerReason: string | undefined;
  let breakerOpenedAt: number | undefined;
  breaker.onBreak((reason) => {
    const error = 'error' in reason ? reason.error : undefined;
    const why =
      error instanceof VoiceApiError
        ? `Voice API refused the account (${error.code}, HTTP ${error.status ?? '?'}): ${error.message}`
        : 'Voice API refused the account';
    breakerReason = why;
    breakerOpenedAt = clock();
    stats.breakerOpenings += 1;
    logger.error({ reason: why }, 'account breaker opened: dialling halted');
    void haltRunning(why);
  });
  breaker.onReset(() => {
    breakerReason = undefined;
    breakerOpenedAt = undefined;
    logger.info('account breaker closed');
  });

  const backoff = new ExponentialBackoff({ initialDelay: settings.rateLimitBackoffMs ?? 500, maxDelay: 30_000 });
  const retryBudget = settings.retryBudget ?? 20;
  // The count lives in the attempt's ledger entry (not cockatiel's in-memory retry policy) because each
  // re-queue is a JetStream redelivery that any replica may pick up, also after a crash.
  const backoffDelay = (deliveries: number): number => {
    let b: IBackoff<unknown> = backoff.next();
    for (let i = 1; i < Math.min(deliveries, 10); i += 1) b = b.next(undefined);
    return Math.round(b.duration);
  };

  // ---- broadcast state ---------------------------------------------------------------------

  const statusOf = (rt: Runtime): ControlStatus => rt.control?.state.status ?? 'running';
  const shouldPull = (rt: Runtime): boolean => !stopping && (statusOf(rt) === 'running' || statusOf(rt) === 'cancelled');

  const notify = (rt: Runtime): void => {
    if (statusOf(rt) !== 'running' || stopping) rt.notRunning.abort();
    else if (rt.notRunning.signal.aborted) rt.notRunning = new AbortController();
    for (const wake of [...rt.wake]) wake();
    if (!shouldPull(rt)) for (const iterator of rt.iterators) void iterator.close();
    gate.pump();
  };

  const waitForPull = (rt: Runtime): Promise<void> =>
    new Promise((resolve) => {
      if (shouldPull(rt) || stopping) return resolve();
      const wake = () => {
        if (shouldPull(rt) || stopping) {
          rt.wake.delete(wake);
          resolve();
        }
      };
      rt.wake.add(wake);
    });

  const ensureRuntime = (spec: BroadcastSpec): Runtime => {
    let rt = runtimes.get(spec.id);
    if (rt) return rt;
    rt = {
      id: spec.id,
      spec,
      iterators: new Set(),
      wake: new Set(),
      sources: [],
      notRunning: new AbortController(),
      settledKeys: new Set(),
      idle: false,
    };
    const cps = spec.request.pacing.callsPerSecond;
    if (cps !== undefined && cps > settings.accountCps) {
      logger.warn({ broadcastId: spec.id, callsPerSecond: cps, accountCps: settings.accountCps }, 'broadcast asks for more calls per second than the account allows; dialling at the account limit');
    }
    if (cps !== undefined && cps < settings.accountCps) {
      rt.pacer = createSharedPacer({
        kv: buckets.pacer,
        key: `broadcast.${spec.id}`,
        ratePerSecond: cps,
        // The rolling-window guard on actual sends, as for the account: with GCRA spacing alone, grants
        // taken while the account pacer was busy (a critical broadcast) left together at the account's
        // rate, above the broadcast's (fresh-user finding: 3 calls/s for a broadcast asking 2).
        // A grant stays outstanding until its create is answered, also while it waits behind the account
        // pacer: every path answers it; the bound only frees the rate of a replica that died holding one.
        outstandingBoundMs: BROADCAST_OUTSTANDING_BOUND_MS,
        ...(settings.pacerWindowMarginMs === undefined ? {} : { windowMarginMs: settings.pacerWindowMarginMs }),
        ...(settings.pacerSafetyFactor === undefined ? {} : { safetyFactor: settings.pacerSafetyFactor }),
      });
    }
    runtimes.set(spec.id, rt);
    stats.broadcasts = runtimes.size;
    const pending = pendingControl.get(spec.id);
    if (pending) {
      rt.control = pending;
      pendingControl.delete(spec.id);
      notify(rt);
      // Cancelled while no replica knew the broadcast (or all were down): sweep unless one already did.
      if (pending.state.status === 'cancelled') startSweep(rt);
    }
    rt.sources.push(runSource(rt, 'jobs'), runSource(rt, 'retries'));
    // A replica (re)starting looks at once for attempts another replica placed and left open.
    if (!stopping) void scanBroadcast(rt).catch((error) => logger.warn({ broadcastId: rt!.id, err: error }, 'watchdog scan failed'));
    return rt;
  };
  const pendingControl = new Map<string, { state: BroadcastControlState; revision: number }>();

  async function loadSpec(broadcastId: string): Promise<BroadcastSpec | undefined> {
    const known = runtimes.get(broadcastId);
    if (known) return known.spec;
    const entry = await buckets.broadcasts.get(broadcastId);
    if (!entry || entry.operation !== 'PUT') return undefined;
    const parsed = BroadcastSpec.safeParse(safeJson(entry.value));
    return parsed.success ? parsed.data : undefined;
  }

  async function watchSpecs(): Promise<void> {
    const iterator = await buckets.broadcasts.watch({ ignoreDeletes: true });
    watchers.push({ stop: () => iterator.stop() });
    for await (const entry of iterator) {
      if (entry.operation !== 'PUT') continue;
      const parsed = BroadcastSpec.safeParse(safeJson(entry.value));
      if (!parsed.success) {
        logger.warn({ key: entry.key, issues: parsed.error.issues.slice(0, 3) }, 'ignoring invalid broadcast spec');
        continue;
      }
      const rt = runtimes.get(parsed.data.id);
      if (rt) rt.spec = parsed.data;
      else ensureRuntime(parsed.data);
    }
  }

  async function watchControl(): Promise<void> {
    const iterator = await buckets.control.watch({ ignoreDeletes: true });
    watchers.push({ stop: () => iterator.stop() });
    for await (const entry of iterator) {
      if (entry.operation !== 'PUT') continue;
      const parsed = BroadcastControlState.safeParse(safeJson(entry.value));
      if (!parsed.success) {
        logger.warn({ key: entry.key }, 'ignoring invalid broadcast control state');
        continue;
      }
      const control = { state: parsed.data, revision: entry.revision };
      const rt = runtimes.get(parsed.data.broadcastId);
      if (!rt) {
        pendingControl.set(parsed.data.broadcastId, control);
        continue;
      }
      const before = statusOf(rt);
      rt.control = control;
      if (before !== parsed.data.status) {
        logger.info({ broadcastId: rt.id, status: parsed.data.status }, 'broadcast control changed');
      }
      notify(rt);
      if (before !== 'cancelled' && parsed.data.status === 'cancelled') startSweep(rt);
    }
  }

  /** Set every running broadcast to `halted` (CAS, so one replica wins) and announce it. */
  async function haltRunning(reason: string, only?: (rt: Runtime) => boolean): Promise<void> {
    for (const rt of runtimes.values()) {
      if (statusOf(rt) !== 'running' || (only && !only(rt))) continue;
      const state: BroadcastControlState = { broadcastId: rt.id, status: 'halted', reason, at: new Date(clock()).toISOString() };
      try {
        const data = new TextEncoder().encode(JSON.stringify(state));
        const revision = rt.control
          ? await buckets.control.update(rt.id, data, rt.control.revision)
          : await buckets.control.create(rt.id, data);
        rt.control = { state, revision };
        notify(rt);
        const event: BroadcastEvent = { kind: 'broadcast', broadcastId: rt.id, type: 'halted', at: state.at, reason };
        await publishJson(js, broadcastEventSubject(rt.id), event, `halted.${rt.id}.${revision}`);
      } catch (error) {
        // Another replica changed the state first; its watch update will reach us.
        logger.debug({ broadcastId: rt.id, err: error }, 'halt lost the race');
      }
    }
  }

  // ---- pulling -----------------------------------------------------------------------------

  async function runSource(rt: Runtime, kind: 'jobs' | 'retries'): Promise<void> {
    const durable = kind === 'jobs' ? CONSUMERS.dialerJobs(rt.id) : CONSUMERS.dialerRetries(rt.id);
    const filter = kind === 'jobs' ? dialJobSubject(rt.id) : dialRetrySubject(rt.id);
    let ensured = false;
    let active = 0;
    let freed: (() => void) | undefined;
    while (!stopping) {
      await waitForPull(rt);
      if (stopping) break;
      try {
        if (!ensured) {
          await ensureConsumer(jsm, STREAMS.dial.name, {
            durable_name: durable,
            filter_subject: filter,
            ack_wait: Math.round(ackWaitMs / 1000) * SECOND_NS,
          });
          ensured = true;
        }
        const consumer = await js.consumers.get(STREAMS.dial.name, durable);
        const messages = await consumer.consume({ max_messages: perSource, expires: pullExpiresMs });
        rt.iterators.add(messages);
        if (!shouldPull(rt)) void messages.close();
        for await (const msg of messages) {
          if (!shouldPull(rt)) {
            msg.nak(handBackMs);
            continue;
          }
          while (active >= perSource) await new Promise<void>((resolve) => (freed = resolve));
          active += 1;
          const task = settle(rt, msg).finally(() => {
            active -= 1;
            inFlight.delete(task);
            freed?.();
          });
          inFlight.add(task);
        }
        rt.iterators.delete(messages);
      } catch (error) {
        if (stopping) break;
        logger.warn({ broadcastId: rt.id, durable, err: error }, 'dial source failed; re-attaching');
        await delay(500);
      }
    }
  }

  async function settle(rt: Runtime, msg: JsMsg): Promise<void> {
    const heartbeat = setInterval(() => msg.working(), Math.max(1000, Math.floor(ackWaitMs / 3)));
    let disposition: Disposition;
    try {
      disposition = await handleJob(rt, msg);
    } catch (error) {
      logger.error({ broadcastId: rt.id, err: error }, 'dial job failed; will retry');
      disposition = { kind: 'nak', delayMs: 1000 };
    } finally {
      clearInterval(heartbeat);
    }
    if (disposition.kind === 'ack') await msg.ackAck().catch(() => msg.ack());
    else if (disposition.kind === 'nak') msg.nak(Math.max(0, Math.round(disposition.delayMs)));
    else {
      logger.warn({ broadcastId: rt.id, seq: msg.seq, reason: disposition.reason }, 'dial job terminated');
      msg.term(); // nats-server 2.9 ignores "+TERM <reason>"; the reason is in the log line above
    }
  }

  // ---- one dial job ------------------------------------------------------------------------

  async function handleJob(rt: Runtime, msg: JsMsg): Promise<Disposition> {
    let job: DialJob;
    try {
      const parsed = DialJob.safeParse(decodeJson(msg.data, 'dial job'));
      if (!parsed.success) {
        return { kind: 'term', reason: `invalid dial job: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
      }
      job = parsed.data;
    } catch (error) {
      return { kind: 'term', reason: (error as Error).message };
    }
    if (job.broadcastId !== rt.id) return { kind: 'term', reason: `job for ${job.broadcastId} on ${rt.id}'s subject` };

    const key = ledger.key(job.broadcastId, job.contactId, job.attempt);
    const early = await beforeSlot(rt, job);
    if (early) {
      await dropLeftSlot(key);
      return early;
    }

    // A call slot under the account's and the broadcast's caps (shared by every replica), then a
    // place in this replica's pipeline; critical first in both.
    const request = rt.spec.request;
    const leaveWhen = AbortSignal.any([shutdown.signal, rt.notRunning.signal]);
    let slotTaken = false;
    let leave: () => void;
    try {
      await slots.acquire(key, { broadcastId: rt.id, priority: request.priority, cap: request.pacing.maxConcurrent }, leaveWhen);
      slotTaken = true;
      leave = await gate.enter(request.priority, () => statusOf(rt) === 'running', leaveWhen);
    } catch (error) {
      if (!(error instanceof GateClosedError)) throw error;
      if (slotTaken) await dropLeftSlot(key);
      if (statusOf(rt) === 'cancelled' && !stopping) {
        await publishFinal(job, 'cancelled', job.attempt - 1, rt.control?.state.reason ?? 'broadcast cancelled');
        return { kind: 'ack' };
      }
      // Paused, halted or shutting down: back to the queue, pulled again when running.
      return { kind: 'nak', delayMs: handBackMs };
    }
    try {
      const outcome = await attempt(rt, job, key, leaveWhen);
      if (outcome.releaseSlot) await slots.release(key);
      return outcome.disposition;
    } finally {
      // On an error the slot stays: the redelivered job takes it over and decides from the ledger.
      leave();
    }
  }

  /**
   * Cancel ends every contact not yet called, now. Jobs parked in JetStream (a closed calling window, a
   * retry delay) would otherwise end only when redelivered, maybe hours later, and the operator would see
   * them queued. One replica (the one whose create of a marker key wins) reads the broadcast's jobs and
   * retries from the stream and ends `cancelled` each attempt nobody claimed; a claimed one ends on its
   * own path. Their later redelivery publishes the same final again, which the reporter ignores.
   */
  async function sweepCancelled(rt: Runtime): Promise<void> {
    const marker = `cancel-sweep.${rt.id}`;
    const won = await buckets.ledger.create(marker, JSON.stringify({ owner: replicaId, at: clock() })).then(
      () => true,
      () => false,
    );
    if (!won) return;
    // A job that passed its status check just before the cancel claims within this; after it, none does.
    await sleep(settings.cancelSweepGraceMs ?? 3000);
    const reason = rt.control?.state.reason ?? 'broadcast cancelled';
    let swept = 0;
    for (const subject of [dialJobSubject(rt.id), dialRetrySubject(rt.id)]) {
      const info = await jsm.streams.info(STREAMS.dial.name, { subjects_filter: subject });
      if (Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0) === 0) continue;
      const consumer = await js.consumers.get(STREAMS.dial.name, { filter_subjects: subject });
      const messages = await consumer.consume();
      try {
        for await (const msg of messages) {
          const parsed = DialJob.safeParse(safeJson(msg.data));
          if (parsed.success && (await unclaimed(rt, parsed.data))) {
            await publishFinal(parsed.data, 'cancelled', parsed.data.attempt - 1, reason);
            swept += 1;
          }
          if (msg.info.pending === 0 || stopping) break;
        }
      } finally {
        await messages.close();
      }
    }
    logger.info({ broadcastId: rt.id, swept }, 'cancel: ended the attempts nobody had claimed');
  }

  /** Start the cancel sweep in the background; a failed sweep leaves parked jobs to end when redelivered. */
  function startSweep(rt: Runtime): void {
    if (stopping) return;
    void sweepCancelled(rt).catch((error: unknown) => logger.warn({ broadcastId: rt.id, err: error }, 'cancel sweep failed; parked jobs end when redelivered'));
  }

  /** No replica claimed this attempt, and (for a retry) the previous attempt still wants one. */
  async function unclaimed(rt: Runtime, job: DialJob): Promise<boolean> {
    if (await ledger.get(ledger.key(job.broadcastId, job.contactId, job.attempt))) return false;
    if (job.attempt === 1) return true;
    const previous = (await ledger.get(ledger.key(job.broadcastId, job.contactId, job.attempt - 1)))?.value;
    return previous !== undefined && wantsRetry(rt.spec.request, previous);
  }

  /** The job's disposition when it is not to be placed now (cancelled, paused, expired, not due, window closed). */
  async function beforeSlot(rt: Runtime, job: DialJob): Promise<Disposition | undefined> {
    const request = rt.spec.request;
    const now = clock();
    const status = statusOf(rt);
    if (status === 'cancelled') {
      await publishFinal(job, 'cancelled', job.attempt - 1, rt.control?.state.reason ?? 'broadcast cancelled');
      return { kind: 'ack' };
    }
    if (status !== 'running') return { kind: 'nak', delayMs: handBackMs };
    if (job.attempt > 1) {
      // A late event may have upgraded the previous attempt since this retry was scheduled (a keypress
      // after the watchdog settled it, say): a confirmed contact is never called again.
      const previous = (await ledger.get(ledger.key(job.broadcastId, job.contactId, job.attempt - 1)))?.value;
      if (previous?.outcome && !wantsRetry(request, previous)) {
        const why = optedOut(request, previous) ? OPTED_OUT : `no retry: attempt ${job.attempt - 1} ended ${previous.outcome}`;
        await publishFinal(job, await bestPrevious(job), job.attempt - 1, why);
        return { kind: 'ack' };
      }
    }
    const expiresAt = request.expiresAt ? Date.parse(request.expiresAt) : undefined;
    if (expiresAt !== undefined && now >= expiresAt) {
      await publishFinal(job, job.attempt > 1 ? await bestPrevious(job) : 'expired', job.attempt - 1, 'broadcast expired');
      return { kind: 'ack' };
    }
    if (job.notBefore !== undefined && job.notBefore > now) return { kind: 'nak', delayMs: job.notBefore - now };
    if (request.window && !request.window.override) {
      const wait = msUntilWindowOpens(request.window, now, job.timezone);
      if (wait > 0) {
        if (expiresAt !== undefined && now + wait >= expiresAt) {
          await publishFinal(job, 'outside_window', job.attempt - 1, 'broadcast expires before the calling window opens');
          return { kind: 'ack' };
        }
        return { kind: 'nak', delayMs: wait };
      }
    }
    return undefined;
  }

  /**
   * Give back a slot key an earlier delivery of this attempt left behind (a crash or a pause while it
   * waited), unless the attempt's call may be live (claimed, placed or ambiguous): that slot is the call's.
   */
  async function dropLeftSlot(key: string): Promise<void> {
    if (!slots.holds(key)) return;
    const state = (await ledger.get(key))?.value.state;
    if (state === 'claimed' || state === 'placed' || state === 'ambiguous') return;
    await slots.release(key);
  }

  interface AttemptResult {
    disposition: Disposition;
    /** No call of this attempt can be in progress: give its slot back. */
    releaseSlot: boolean;
  }

  /** Claim, pace and place one attempt. */
  async function attempt(rt: Runtime, job: DialJob, key: string, leaveWhen: AbortSignal): Promise<AttemptResult> {
    const now = clock();
    const claim = await takeClaim(job, key, now);
    // Placed (not final): the slot is the live call's. Waiting: an ambiguous call or another worker's create holds it.
    if (claim.kind === 'done') return { disposition: { kind: 'ack' }, releaseSlot: claim.final };
    if (claim.kind === 'wait') return { disposition: { kind: 'nak', delayMs: claim.delayMs }, releaseSlot: false };

    let grant: number;
    let broadcastGrant: number | undefined;
    /** Tell both pacers the create was answered (or will never be sent): it no longer counts as outstanding. */
    const answered = (): void => {
      accountPacer.answered(grant);
      if (broadcastGrant !== undefined) rt.pacer?.answered(broadcastGrant);
    };
    const lease = renewWhileWaiting(key, claim);
    try {
      // Sign the token now (cheap when reused) so the request leaves right at its paced time.
      await voice.prepare().catch(() => undefined);
      if (rt.pacer) broadcastGrant = await rt.pacer.acquire(leaveWhen);
      grant = await accountPacer.acquire(leaveWhen, { priority: rt.spec.request.priority });
    } catch {
      if (broadcastGrant !== undefined) rt.pacer?.answered(broadcastGrant); // never sent
      await releaseClaim(key, claim, 'stopped while waiting for the pacer');
      return { disposition: { kind: 'nak', delayMs: handBackMs }, releaseSlot: true };
    } finally {
      await lease.stop();
    }
    if (statusOf(rt) !== 'running') {
      answered(); // never sent: it reaches the provider no later than now
      await releaseClaim(key, claim, `broadcast ${statusOf(rt)} while waiting for the pacer`);
      return { disposition: { kind: 'nak', delayMs: statusOf(rt) === 'cancelled' ? 0 : handBackMs }, releaseSlot: true };
    }
    // The pacer wait can outlast the claim's grace: only the holder of this exact claim may send.
    const sending = await markSending(key, claim).catch((error: unknown) => {
      answered(); // not sent; the claim stays unsent and is taken over after the grace
      throw error;
    });
    if (!sending) {
      answered();
      return lostClaim(job, key);
    }

    const body = createBody(rt.spec, job);
    let call: CreatedCall;
    try {
      call = await breaker.execute(() => voice.createCall(body)).finally(answered);
    } catch (error) {
      return failedCreate(job, key, claim, error);
    }
    // The call exists: nothing below may release the claim. Only this process knows it, so recording it
    // is retried through a NATS outage (its events may be lost in the same outage; were it left as
    // merely "sent", the ambiguity timeout could place a second call). Should this process die first,
    // the redelivered job finds the claim marked as sent and waits for the call's events.
    stats.placed += 1;
    const recorded = await recordRetry.execute(() =>
      ledger.modify(
        key,
        (entry) => {
          entry.uuid = call.uuid;
          entry.placedAt = clock();
          if (PLACING_STATES.has(entry.state)) entry.state = 'placed';
          return entry;
        },
        sending,
      ),
    );
    await publishAttempt(job, 'placed', { uuid: call.uuid }, `placed.${key}.${claim.tries}`);
    if (recorded && recorded.entry.state !== 'final') watchAttempt(key, checkDueAt(recorded.entry, resultTimeoutMs));
    // Events may have finished the attempt before we recorded the uuid.
    return { disposition: { kind: 'ack' }, releaseSlot: recorded?.entry.state === 'final' };
  }

  /**
   * Keep an unsent claim alive while it waits for the pacer (a slow broadcast rate can make that long),
   * so another delivery of the job does not take it over from a live holder.
   */
  function renewWhileWaiting(key: string, claim: TakenClaim): { stop: () => Promise<void> } {
    let renewing: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      renewing = renewing.then(() =>
        ledger
          .modify(key, (entry) => (holdsClaim(entry, claim) && entry.sendingAt === undefined ? { ...entry, renewedAt: clock() } : undefined))
          .catch((error: unknown) => logger.warn({ key, err: error }, 'claim renewal failed')),
      );
    }, Math.max(100, Math.floor(settings.claimGraceMs / 3)));
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await renewing;
      },
    };
  }

  /** Stamp `sendingAt` on the claim, if it is still exactly ours and unsent; false when it is not. */
  async function markSending(key: string, claim: TakenClaim): Promise<Versioned<LedgerEntry> | undefined> {
    const result = await ledger.modify(
      key,
      (entry) => {
        if (!holdsClaim(entry, claim) || entry.sendingAt !== undefined) return undefined;
        entry.sendingAt = clock();
        return entry;
      },
      claim.written,
    );
    return result?.changed ? { value: result.entry, revision: result.revision } : undefined;
  }

  /**
   * Our claim was taken over while we waited for the pacer (we looked stuck or dead). The call was not
   * sent by us; hand the job back so a later delivery decides from the ledger. The slot stays with the
   * attempt, which the new holder is placing.
   */
  async function lostClaim(job: DialJob, key: string): Promise<AttemptResult> {
    stats.claimsLost += 1;
    const entry = (await ledger.get(key))?.value;
    logger.warn(
      { broadcastId: job.broadcastId, contactId: job.contactId, attempt: job.attempt, state: entry?.state, owner: entry?.owner },
      'claim taken over while waiting for the pacer; not sending',
    );
    if (entry?.state === 'placed' || entry?.state === 'final') return { disposition: { kind: 'ack' }, releaseSlot: entry.state === 'final' };
    return { disposition: { kind: 'nak', delayMs: 1000 }, releaseSlot: false };
  }

  async function failedCreate(job: DialJob, key: string, claim: TakenClaim, failure: unknown): Promise<AttemptResult> {
    if (failure instanceof BrokenCircuitError) {
      await releaseClaim(key, claim, 'account breaker open');
      // A broadcast created after the breaker opened is halted with the same reason, at once (one
      // resumed by the operator meanwhile is not: it waits for the breaker's next probe instead).
      const opened = breakerOpenedAt;
      if (breakerReason !== undefined && opened !== undefined) await haltRunning(breakerReason, (rt) => Date.parse(rt.spec.createdAt) >= opened);
      return { disposition: { kind: 'nak', delayMs: settings.breakerCooldownMs }, releaseSlot: true };
    }
    // Anything but a classified Voice API answer may have happened after the request left: ambiguous.
    const error = failure instanceof VoiceApiError ? failure : new VoiceApiError('unexpected_response', `create failed: ${String((failure as Error)?.message ?? failure)}`, undefined, true, { cause: failure });
    const log = { broadcastId: job.broadcastId, contactId: job.contactId, attempt: job.attempt, code: error.code, status: error.status };
    if (error.ambiguous) {
      stats.ambiguous += 1;
      const since = clock();
      await ledger.modify(key, (entry) => {
        if (!PLACING_STATES.has(entry.state)) return undefined; // events already proved the call
        entry.state = 'ambiguous';
        entry.ambiguousSince = since;
        entry.reason = error.message;
        return entry;
      });
      logger.warn(log, 'ambiguous create: the call may have been placed; waiting for its events');
      await publishAttempt(job, 'ambiguous', { reason: `${error.code}: ${error.message}` }, `ambiguous.${key}.${since}`);
      // The slot stays taken: the call may be live. Its final event, the watchdog or the re-placed attempt ends it.
      return { disposition: { kind: 'nak', delayMs: settings.ambiguityTimeoutMs }, releaseSlot: false };
    }
    if (error.code === 'rate_limited') {
      stats.rateLimited += 1;
      await accountPacer.penalise();
      nc.publish(ACCOUNT_SIGNAL, JSON.stringify({ type: 'rate_limited', at: clock() }));
      const spent = await releaseClaim(key, claim, 'rate limited (429); not placed', true);
      if (spent >= retryBudget) return giveUp(job, key, `rate limited (429) ${spent} times; retry budget spent`);
      const wait = backoffDelay(spent);
      logger.warn({ ...log, retryInMs: wait }, 'Voice API rate limit hit; pacer penalised, job re-queued');
      return { disposition: { kind: 'nak', delayMs: wait }, releaseSlot: true };
    }
    if (error.code === 'unauthorized' || error.code === 'forbidden' || error.code === 'payment_required') {
      await releaseClaim(key, claim, `${error.code}; not placed`);
      return { disposition: { kind: 'nak', delayMs: settings.breakerCooldownMs }, releaseSlot: true };
    }
    if (error.code === 'network' || error.code === 'timeout') {
      // Not ambiguous: nothing reached the provider (connection refused, DNS).
      const spent = await releaseClaim(key, claim, `${error.code}; not sent`, true);
      if (spent >= retryBudget) return giveUp(job, key, `Voice API unreachable (${error.code}) ${spent} times; retry budget spent`);
      logger.warn(log, 'Voice API unreachable; job re-queued');
      return { disposition: { kind: 'nak', delayMs: backoffDelay(spent) }, releaseSlot: true };
    }
    // A definite refusal for this number (400/404/422): the attempt ends now.
    stats.refused += 1;
    const outcome: AttemptOutcome = /\bto\b|number/i.test(error.message) ? 'invalid_number' : 'failed';
    await publishAttempt(job, 'refused', { reason: error.message }, `refused.${key}`);
    const finished = await ledger.modify(key, (entry) => {
      if (entry.state === 'final') return undefined;
      entry.state = 'final';
      entry.outcome = outcome;
      entry.finalAt = clock();
      entry.reason = error.message;
      return entry;
    });
    if (finished) await followUp(key, finished.entry);
    return { disposition: { kind: 'ack' }, releaseSlot: true };
  }

  /** A claim this delivery holds: identified by owner and claim time (a replica may re-claim its own). */
  interface TakenClaim {
    kind: 'go';
    tries: number;
    claimedAt: number;
    /** The claim as written: the first write after it needs no read. */
    written: Versioned<LedgerEntry>;
  }
  type Claim = TakenClaim | { kind: 'done'; final: boolean } | { kind: 'wait'; delayMs: number };

  const holdsClaim = (entry: LedgerEntry, claim: TakenClaim): boolean =>
    entry.state === 'claimed' && entry.owner === replicaId && entry.claimedAt === claim.claimedAt;

  /** Take the durable claim before any create request; decide what an existing claim means. */
  async function takeClaim(job: DialJob, key: string, now: number): Promise<Claim> {
    const fresh: LedgerEntry = {
      state: 'claimed',
      broadcastId: job.broadcastId,
      contactId: job.contactId,
      attempt: job.attempt,
      number: job.number,
      owner: replicaId,
      claimedAt: now,
      tries: 1,
      signals: [],
      job: stripNotBefore(job),
    };
    const takeOver = async (entry: LedgerEntry, revision: number, tries: number): Promise<Claim | undefined> => {
      const carried = entry.transientFailures === undefined ? {} : { transientFailures: entry.transientFailures };
      const taken = await ledger.replace(key, { ...fresh, tries, signals: entry.signals, ...carried }, revision);
      return taken ? { kind: 'go', tries, claimedAt: now, written: taken } : undefined;
    };
    for (let round = 0; round < 5; round += 1) {
      const created = await ledger.create(key, fresh);
      if (created) return { kind: 'go', tries: 1, claimedAt: now, written: created };
      const existing = await ledger.get(key);
      if (!existing) continue;
      const entry = existing.value;
      if (entry.state === 'placed' || entry.state === 'final') return { kind: 'done', final: entry.state === 'final' };
      if (entry.state === 'released' || (entry.state === 'ambiguous' && now - (entry.ambiguousSince ?? 0) >= settings.ambiguityTimeoutMs)) {
        const wasAmbiguous = entry.state === 'ambiguous';
        if (wasAmbiguous && entry.tries >= placeLimit) {
          // Re-placing again and again could call the person many times, so the attempt ends here. No
          // event came after any of its creates (the same evidence that allowed each re-place): it ends
          // `failed`, which the retry policy may retry later, rather than `unknown`, never retried, which
          // would skip everyone in flight through a provider outage of a few minutes.
          const reason = `create stayed ambiguous ${entry.tries} times with no call event: taken as not placed`;
          const ended = await ledger.replace(key, { ...entry, state: 'final', outcome: 'failed', finalAt: now, reason }, existing.revision);
          if (!ended) continue;
          logger.warn({ broadcastId: job.broadcastId, contactId: job.contactId, attempt: job.attempt, reason }, 'ambiguous attempt finalised as failed');
          await followUp(key, ended.value);
          return { kind: 'done', final: true };
        }
        const taken = await takeOver(entry, existing.revision, entry.tries + 1);
        if (!taken) continue;
        if (wasAmbiguous) {
          logger.info({ broadcastId: job.broadcastId, contactId: job.contactId, attempt: job.attempt }, 'no event for an ambiguous create: re-placing the attempt');
        }
        return taken;
      }
      if (entry.state === 'ambiguous') {
        return { kind: 'wait', delayMs: Math.max(1000, settings.ambiguityTimeoutMs - (now - (entry.ambiguousSince ?? now))) };
      }
      // A bare claim: another worker may still be waiting for the pacer or placing the call.
      const age = now - (entry.sendingAt ?? entry.renewedAt ?? entry.claimedAt);
      if (age < settings.claimGraceMs) return { kind: 'wait', delayMs: Math.min(1000, settings.claimGraceMs - age + 50) };
      if (entry.sendingAt === undefined) {
        // Never sent and not renewed: its holder died (or stalled). Sending needs this exact claim, so
        // once we take it over the old holder cannot place the call; no ambiguity to sit out.
        const taken = await takeOver(entry, existing.revision, entry.tries);
        if (!taken) continue;
        logger.info({ broadcastId: job.broadcastId, contactId: job.contactId, attempt: job.attempt, from: entry.owner }, 'took over a claim that was never sent');
        return taken;
      }
      const marked = await ledger.replace(key, { ...entry, state: 'ambiguous', ambiguousSince: now, reason: 'sent without a recorded result' }, existing.revision);
      if (!marked) continue;
      stats.ambiguous += 1;
      await publishAttempt(job, 'ambiguous', { reason: 'create sent but no result recorded (crash or lost reply)' }, `ambiguous.${key}.${now}`);
      return { kind: 'wait', delayMs: settings.ambiguityTimeoutMs };
    }
    return { kind: 'wait', delayMs: 1000 };
  }

  /**
   * The create request surely did not happen: let the next delivery claim again. With `transient`,
   * counts one more spent retry of the budget; returns the count so far.
   */
  async function releaseClaim(key: string, claim: TakenClaim, reason: string, transient = false): Promise<number> {
    const result = await ledger.modify(key, (entry) => {
      if (!holdsClaim(entry, claim)) return undefined;
      entry.state = 'released';
      entry.reason = reason;
      delete entry.sendingAt;
      if (transient) entry.transientFailures = (entry.transientFailures ?? 0) + 1;
      return entry;
    });
    return result?.entry.transientFailures ?? 0;
  }

  /** The retry budget is spent: the attempt ends `failed` (the broadcast's retry policy still applies). */
  async function giveUp(job: DialJob, key: string, reason: string): Promise<AttemptResult> {
    logger.error({ broadcastId: job.broadcastId, contactId: job.contactId, attempt: job.attempt, reason }, 'attempt given up');
    const finished = await ledger.modify(key, (entry) => {
      if (entry.state === 'final' || entry.state === 'placed') return undefined;
      entry.state = 'final';
      entry.outcome = 'failed';
      entry.finalAt = clock();
      entry.reason = reason;
      return entry;
    });
    if (finished?.changed) await followUp(key, finished.entry);
    return { disposition: { kind: 'ack' }, releaseSlot: true };
  }

  function createBody(spec: BroadcastSpec, job: DialJob): CreateCallBody {
    const { answerUrl, eventUrl } = webhookUrls(settings.webhookPublicUrl, spec, job);
    const from = spec.request.from ?? settings.defaultFrom;
    const body: CreateCallBody = {
      to: [{ type: 'phone', number: toVoiceNumber(job.number) }],
      answer_url: [answerUrl],
      event_url: [eventUrl],
      ringing_timer: settings.ringingTimerSeconds,
      length_timer: settings.lengthTimerSeconds,
      // Detection tells voicemail from a person; `hangup` also ends machine-answered calls.
      machine_detection: spec.request.machine.action === 'hangup' ? 'hangup' : 'continue',
    };
    if (from) body.from = { type: 'phone', number: toVoiceNumber(from) };
    else body.random_from_number = true;
    return body;
  }

  // ---- outcomes ----------------------------------------------------------------------------

  async function handleCallEvent(msg: JsMsg): Promise<Disposition> {
    let event: CallEvent;
    try {
      const parsed = CallEvent.safeParse(decodeJson(msg.data, 'call event'));
      if (!parsed.success) return { kind: 'term', reason: `invalid call event: ${parsed.error.issues[0]?.message ?? 'schema'}` };
      event = parsed.data;
    } catch (error) {
      return { kind: 'term', reason: (error as Error).message };
    }
    const key = ledger.key(event.broadcastId, event.contactId, event.attempt);
    const spec = await loadSpec(event.broadcastId);
    const ackKey = spec?.request.acknowledgement?.key ?? '1';
    const signal: LedgerSignal = { status: event.status };
    if (event.detail !== undefined) signal.detail = event.detail;
    if (event.digits !== undefined) signal.digits = event.digits;
    let resolvedAmbiguity = false;
    const now = clock();
    const result = await ledger.modify(key, (entry) => {
      resolvedAmbiguity = false;
      let changed = false;
      if (!entry.signals.some((s) => sameSignal(s, signal))) {
        entry.signals.push(signal);
        changed = true;
      }
      if (PLACING_STATES.has(entry.state)) {
        resolvedAmbiguity = entry.state === 'ambiguous';
        entry.state = 'placed';
        entry.uuid ??= event.uuid;
        changed = true;
      }
      if (entry.state === 'final' && changed) {
        // A late event (after the settle window, or after the watchdog decided from the call's status)
        // may prove a stronger outcome: a keypress, a machine, a failure detail. Outcomes only move forward.
        const view = classifyAttempt(entry.signals, ackKey);
        const settled = entry.outcome ?? 'unknown';
        if (outcomeRank(view.outcome) > outcomeRank(settled)) {
          entry.upgradePending ??= settled;
          entry.outcome = view.outcome;
        }
      }
      if (entry.state !== 'final') {
        const view = classifyAttempt(entry.signals, ackKey);
        if (view.final && entry.finalSeenAt === undefined) {
          // Events are applied concurrently and may come out of order: let stragglers land first.
          entry.finalSeenAt = now;
          changed = true;
        } else if (view.final && now - (entry.finalSeenAt ?? now) >= settleFor(view.outcome)) {
          entry.state = 'final';
          entry.outcome = view.outcome;
          entry.finalAt = clock();
          changed = true;
        }
      }
      return changed ? entry : undefined;
    });
    if (!result) {
      logger.warn({ broadcastId: event.broadcastId, contactId: event.contactId, attempt: event.attempt, uuid: event.uuid }, 'call event for an attempt without a claim; ignored');
      return { kind: 'ack' };
    }
    const entry = result.entry;
    if (resolvedAmbiguity) {
      const job = jobOf(entry);
      logger.info({ broadcastId: job.broadcastId, contactId: job.contactId, attempt: job.attempt }, 'ambiguous create resolved: the call was placed');
      await publishAttempt(job, 'placed', { uuid: event.uuid, reason: 'resolved from call events' }, `placed.${key}.${event.uuid}`);
      if (entry.state !== 'final') watchAttempt(key, checkDueAt(entry, resultTimeoutMs));
    }
    if (entry.state !== 'final' && entry.finalSeenAt !== undefined) {
      // Come back once the settle time has passed to finalise (any replica may do it).
      const wait = settleFor(classifyAttempt(entry.signals, ackKey).outcome);
      return { kind: 'nak', delayMs: Math.max(1, wait - (now - entry.finalSeenAt)) };
    }
    if (entry.state === 'final') {
      await slots.release(key);
      if (!entry.followedUp) await followUp(key, entry);
      // After the follow-up: one in flight elsewhere may have published the outcome before the upgrade.
      if (entry.upgradePending !== undefined) await publishUpgrade(key, entry.upgradePending);
    }
    return { kind: 'ack' };
  }

  /**
   * Correct what was published for an attempt already followed up: its outcome, and the contact's
   * final state when this attempt ended the contact. A retry already scheduled stays scheduled (the
   * retry job checks the earlier outcomes again before it calls). Idempotent by message id.
   */
  async function publishUpgrade(key: string, from: AttemptOutcome): Promise<void> {
    const entry = (await ledger.get(key))?.value;
    if (!entry || entry.upgradePending === undefined) return; // published meanwhile by another delivery
    const job = jobOf(entry);
    const outcome = entry.outcome ?? 'unknown';
    const reason = `late event: ${from} → ${outcome}`;
    logger.info({ broadcastId: job.broadcastId, contactId: job.contactId, attempt: job.attempt, from, outcome }, 'late event upgraded a settled attempt');
    await publishAttempt(job, 'outcome', { outcome, reason, ...(entry.uuid ? { uuid: entry.uuid } : {}) }, `outcome.${key}.${outcome}`);
    if (entry.retryAt === undefined) {
      const previous = job.attempt > 1 ? await bestPrevious(job) : undefined;
      const before = previous === undefined ? from : betterOf(from, previous);
      const after = previous === undefined ? outcome : betterOf(outcome, previous);
      if (after !== before) await publishFinal(job, after, job.attempt, reason, before);
    }
    await ledger.modify(key, (e) => {
      if (e.upgradePending === undefined) return undefined;
      delete e.upgradePending;
      return e;
    });
  }

  /** After an attempt's outcome: publish it, then schedule the retry or the contact's final state. */
  async function followUp(key: string, entry: LedgerEntry): Promise<void> {
    const job = jobOf(entry);
    const outcome = entry.outcome ?? 'unknown';
    const spec = await loadSpec(job.broadcastId);
    const finalAt = entry.finalAt ?? clock();
    let retryAt: number | undefined;
    if (spec) {
      const request = spec.request;
      const retryable = wantsRetry(request, entry, outcome);
      const candidate = finalAt + request.retry.delaySeconds * 1000;
      const expiresAt = request.expiresAt ? Date.parse(request.expiresAt) : undefined;
      const status = runtimes.get(job.broadcastId)?.control?.state.status ?? (await controlStatus(job.broadcastId));
      if (retryable && job.attempt < request.retry.maxAttempts && status !== 'cancelled' && (expiresAt === undefined || candidate < expiresAt)) {
        retryAt = candidate;
      }
    }
    const extra: Partial<AttemptEvent> = { outcome, ...(entry.uuid ? { uuid: entry.uuid } : {}), ...(retryAt ? { retryAt } : {}) };
    // A placed call's reason is stale (ambiguity) unless the watchdog decided the outcome.
    if (entry.reason && entry.state === 'final' && (!entry.uuid || entry.checks !== undefined || outcome === 'unknown')) extra.reason = entry.reason;
    await publishAttempt(job, 'outcome', extra, `outcome.${key}`);
    if (retryAt !== undefined) {
      const next: DialJob = { ...job, attempt: job.attempt + 1, notBefore: retryAt };
      await publishJson(js, dialRetrySubject(job.broadcastId), next, ledger.key(job.broadcastId, job.contactId, next.attempt));
    } else {
      const best = job.attempt > 1 ? betterOf(outcome, await bestPrevious(job)) : outcome;
      const reason = spec && optedOut(spec.request, entry) ? OPTED_OUT : outcome === best ? entry.reason : undefined;
      await publishFinal(job, best, job.attempt, reason);
    }
    await ledger.modify(key, (e) => {
      if (e.followedUp) return undefined;
      e.followedUp = true;
      if (retryAt !== undefined) e.retryAt = retryAt;
      return e;
    });
  }

  async function controlStatus(broadcastId: string): Promise<ControlStatus> {
    const entry = await buckets.control.get(broadcastId);
    if (!entry || entry.operation !== 'PUT') return 'running';
    const parsed = BroadcastControlState.safeParse(safeJson(entry.value));
    return parsed.success ? parsed.data.status : 'running';
  }

  /** The best outcome of a contact's earlier attempts (a retried `answered` still counts). */
  async function bestPrevious(job: DialJob): Promise<FinalState> {
    let best: AttemptOutcome = 'unknown';
    for (let n = 1; n < job.attempt; n += 1) {
      const previous = await ledger.get(ledger.key(job.broadcastId, job.contactId, n));
      if (previous?.value.outcome) best = betterOf(best, previous.value.outcome);
    }
    return best;
  }

  async function publishAttempt(job: DialJob, phase: AttemptEvent['phase'], extra: Partial<AttemptEvent>, msgId: string): Promise<void> {
    const event = AttemptEvent.parse({
      kind: 'attempt',
      broadcastId: job.broadcastId,
      contactId: job.contactId,
      attempt: job.attempt,
      number: job.number,
      phase,
      at: new Date(clock()).toISOString(),
      ...extra,
    });
    await publishJson(js, attemptEventSubject(job.broadcastId), event, msgId);
  }

  /** The contact's final state; with `supersedes`, a correction of the one published before. */
  async function publishFinal(job: DialJob, state: FinalState, attempts: number, reason?: string, supersedes?: FinalState): Promise<void> {
    const final: ContactFinal = {
      kind: 'contact',
      broadcastId: job.broadcastId,
      contactId: job.contactId,
      number: job.number,
      state,
      attempts,
      at: new Date(clock()).toISOString(),
      ...(reason ? { reason } : {}),
      ...(supersedes ? { supersedes } : {}),
    };
    const msgId = `final.${job.broadcastId}.${job.contactId}${supersedes ? `.${state}` : ''}`;
    await publishJson(js, contactFinalSubject(job.broadcastId), ContactFinal.parse(final), msgId);
  }

  // ---- watchdog ----------------------------------------------------------------------------
  // A placed call whose final event never comes (provider forgot it, webhook retries exhausted while
  // we were down) would hold its contact open forever. The replica that placed it arms a timer; every
  // replica also scans the ledger of known broadcasts on start and periodically, so a crash loses
  // nothing. Only the replica whose CAS on the entry wins asks the Voice API.

  const resultTimeoutMs = settings.attemptResultTimeoutMs ?? (settings.ringingTimerSeconds + settings.lengthTimerSeconds + 60) * 1000;
  const scanMs = settings.watchdogScanMs ?? 30_000;
  const recheckMs = settings.statusRecheckMs ?? 60_000;
  const checkLimit = settings.statusCheckLimit ?? 5;
  const placeLimit = settings.ambiguousPlaceLimit ?? 3;
  const watchTimers = new Map<string, NodeJS.Timeout>();
  const checking = new Map<string, Promise<'settled' | 'open'>>();
  let scanRound = 0;

  function watchAttempt(key: string, dueAt: number): void {
    if (stopping) return;
    clearTimeout(watchTimers.get(key));
    const timer = setTimeout(() => {
      watchTimers.delete(key);
      void runCheck(key);
    }, Math.max(0, dueAt - clock()) + 20);
    timer.unref();
    watchTimers.set(key, timer);
  }

  /** Check one attempt unless this replica is already checking it; never throws. */
  function runCheck(key: string): Promise<'settled' | 'open'> {
    const running = checking.get(key);
    if (running) return running;
    const task = checkAttempt(key)
      .catch((error): 'open' => {
        logger.warn({ key, err: error }, 'attempt check failed; the next scan tries again');
        return 'open';
      })
      .finally(() => {
        checking.delete(key);
        inFlight.delete(task);
      });
    checking.set(key, task);
    inFlight.add(task);
    return task;
  }

  /** Resolve an overdue attempt; 'settled' when it is final and followed up (nothing more to do). */
  async function checkAttempt(key: string): Promise<'settled' | 'open'> {
    const current = await ledger.get(key);
    if (!current) return 'open';
    const entry = current.value;
    const now = clock();
    if (entry.state === 'final') {
      if (entry.followedUp) return 'settled';
      // A crash between the outcome and its follow-up; publishes are deduplicated by message id.
      if (now - (entry.finalAt ?? now) >= Math.max(settleMs, 5000)) {
        await slots.release(key);
        await followUp(key, entry);
      }
      return 'open';
    }
    if (entry.state === 'ambiguous') {
      // The job's redelivery re-places or ends it; this is the net for a job that never comes back.
      const since = entry.ambiguousSince ?? now;
      // Only a job that never came back: its redelivery normally re-places it right after the
      // ambiguity timeout, and ending it `unknown` first would leave the person uncalled.
      if (now - since >= settings.ambiguityTimeoutMs + Math.max(resultTimeoutMs, AMBIGUOUS_NET_MIN_MS)) {
        await finalise(key, (e) => e.state === 'ambiguous' && e.ambiguousSince === entry.ambiguousSince, 'unknown', 'ambiguous create never resolved');
      }
      return 'open';
    }
    if (entry.state !== 'placed' || !entry.uuid) return 'open';
    const dueAt = checkDueAt(entry, resultTimeoutMs);
    if (now < dueAt) {
      watchAttempt(key, dueAt);
      return 'open';
    }
    const spec = await loadSpec(entry.broadcastId);
    const ackKey = spec?.request.acknowledgement?.key ?? '1';
    const view = classifyAttempt(entry.signals, ackKey);
    if (view.final) {
      // The final event came but nobody settled it (the settle redelivery was lost).
      await finalise(key, (e) => e.state === 'placed', view.outcome, undefined);
      return 'open';
    }
    const checks = (entry.checks ?? 0) + 1;
    // Claim this check: concurrent replicas see the moved revision and leave it to us.
    const won = await ledger.replace(key, { ...entry, checks, nextCheckAt: now + recheckMs }, current.revision);
    if (!won) return 'open';
    const log = { broadcastId: entry.broadcastId, contactId: entry.contactId, attempt: entry.attempt, uuid: entry.uuid, check: checks };
    let verdict: StatusVerdict;
    let detail: string;
    try {
      const call = await voice.getCall(entry.uuid, shutdown.signal);
      verdict = verdictOf(call.status, entry.signals, ackKey, call.startTime !== undefined);
      detail = `status ${call.status}`;
    } catch (error) {
      if (error instanceof VoiceApiError && error.code === 'not_found') {
        await finalise(key, (e) => e.state === 'placed', 'unknown', 'no final event and the Voice API does not know the call (404)');
        return 'open';
      }
      if (stopping) return 'open'; // aborted by our own shutdown: says nothing about the call
      verdict = { kind: 'unclear' };
      detail = `status check failed: ${(error as Error).message}`;
    }
    if (verdict.kind === 'final') {
      await finalise(key, (e) => e.state === 'placed', verdict.outcome, `no final event; outcome from the Voice API (${detail})`);
    } else if (checks >= checkLimit) {
      await finalise(key, (e) => e.state === 'placed', 'unknown', `no final event after ${checks} status checks (${detail})`);
    } else {
      logger.info({ ...log, detail }, 'attempt overdue and not resolved by a status check; checking again later');
      watchAttempt(key, now + recheckMs);
    }
    return 'open';
  }

  /** End an attempt with `outcome` if `guard` still holds, then publish and follow up as events would. */
  async function finalise(key: string, guard: (entry: LedgerEntry) => boolean, outcome: AttemptOutcome, reason: string | undefined): Promise<void> {
    const finished = await ledger.modify(key, (e) => {
      if (e.state === 'final' || !guard(e)) return undefined;
      e.state = 'final';
      e.outcome = outcome;
      e.finalAt = clock();
      if (reason) e.reason = reason;
      else delete e.reason;
      return e;
    });
    if (!finished?.changed) return;
    const e = finished.entry;
    logger.warn({ broadcastId: e.broadcastId, contactId: e.contactId, attempt: e.attempt, uuid: e.uuid, outcome, reason }, 'attempt finalised by the watchdog');
    clearTimeout(watchTimers.get(key));
    watchTimers.delete(key);
    await slots.release(key);
    await followUp(key, e);
  }

  /** Look through one broadcast's ledger for attempts whose result is overdue. */
  async function scanBroadcast(rt: Runtime): Promise<void> {
    const keys: string[] = [];
    for await (const key of await buckets.ledger.keys(`${rt.id}.>`)) if (!rt.settledKeys.has(key)) keys.push(key);
    let open = 0;
    for (const key of keys) {
      if (stopping) return;
      if ((await runCheck(key)) === 'settled') rt.settledKeys.add(key);
      else open += 1;
    }
    rt.idle = open === 0 && (await jobsWaiting(rt)) === 0;
  }

  async function jobsWaiting(rt: Runtime): Promise<number> {
    let waiting = 0;
    for (const durable of [CONSUMERS.dialerJobs(rt.id), CONSUMERS.dialerRetries(rt.id)]) {
      try {
        const info = await jsm.consumers.info(STREAMS.dial.name, durable);
        waiting += info.num_pending + info.num_ack_pending;
      } catch {
        waiting += 1; // not created yet: do not call it idle
      }
    }
    return waiting;
  }

  async function scanLoop(): Promise<void> {
    while (!stopping) {
      try {
        await sleep(scanMs, undefined, { signal: shutdown.signal });
      } catch {
        return; // stopping
      }
      scanRound += 1;
      for (const rt of [...runtimes.values()]) {
        if (stopping) return;
        if (rt.idle && scanRound % 10 !== 0) continue;
        await scanBroadcast(rt).catch((error) => logger.warn({ broadcastId: rt.id, err: error }, 'watchdog scan failed'));
      }
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  return {
    async start() {
      await voice.warmUp();
      await ensureConsumer(jsm, STREAMS.events.name, {
        durable_name: CONSUMERS.dialerCallEvents,
        filter_subject: 'evt.call.>',
      });
      await slots.start();
      background.push(
        watchSpecs().catch((error) => logger.error({ err: error }, 'broadcast watch ended')),
        watchControl().catch((error) => logger.error({ err: error }, 'control watch ended')),
      );
      background.push(scanLoop());
      eventsLoop = startConsumeLoop({
        nc,
        stream: STREAMS.events.name,
        consumer: CONSUMERS.dialerCallEvents,
        concurrency: 64,
        handler: handleCallEvent,
        onError: (error) => logger.error({ err: error }, 'call event handling failed; will retry'),
        onTerm: (reason) => logger.warn({ reason }, 'call event terminated'),
      });
      ready = true;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      ready = false;
      for (const rt of runtimes.values()) notify(rt);
      // Jobs not yet paced go back to the queue at once; calls being created finish.
      shutdown.abort();
      gate.close();
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      await Promise.allSettled([...runtimes.values()].flatMap((rt) => rt.sources));
      await eventsLoop?.stop();
      for (const watcher of watchers) watcher.stop();
      await Promise.allSettled(background);
      await slots.stop();
      for (const timer of watchTimers.values()) clearTimeout(timer);
      watchTimers.clear();
    },
    isReady: () => ready && !nc.isClosed() && slots.isReady(),
    stats: () => ({ ...stats, activeCalls: slots.held, breakerOpen: breakerReason === undefined ? 0 : 1 }),
  };
}

const OPTED_OUT = 'opted out by keypress: not called again';

/** The person pressed the broadcast's opt-out key during this attempt: no retry may call them again. */
function optedOut(request: BroadcastSpec['request'], entry: LedgerEntry): boolean {
  const key = request.acknowledgement?.optOutKey;
  return key !== undefined && entry.signals.some((signal) => signal.digits?.charAt(0) === key);
}

/** Does this ended attempt call for another one: a retryable outcome, and the person did not opt out? */
function wantsRetry(request: BroadcastSpec['request'], entry: LedgerEntry, outcome = entry.outcome): boolean {
  return outcome !== undefined && isRetryable(request, outcome) && !optedOut(request, entry);
}

/** Does this outcome call for another attempt under the broadcast's retry policy? */
function isRetryable(request: BroadcastSpec['request'], outcome: AttemptOutcome): boolean {
  if (outcome === 'acknowledged') return false;
  return (request.retry.on as readonly string[]).includes(outcome) || (outcome === 'voicemail' && request.machine.countAs === 'retry');
}

function sameSignal(a: LedgerSignal, b: LedgerSignal): boolean {
  return a.status === b.status && a.detail === b.detail && a.digits === b.digits;
}

function betterOf(a: AttemptOutcome, b: AttemptOutcome): AttemptOutcome;
function betterOf(a: FinalState, b: FinalState): FinalState;
function betterOf(a: FinalState, b: FinalState): FinalState {
  const ia = BEST.indexOf(a as AttemptOutcome);
  const ib = BEST.indexOf(b as AttemptOutcome);
  if (ia < 0) return b;
  if (ib < 0) return a;
  return ia <= ib ? a : b;
}

function stripNotBefore(job: DialJob): DialJob {
  const { notBefore: _ignored, ...rest } = job;
  return rest;
}

/** The job an entry was claimed for (kept in the ledger so retries need no other lookup). */
function jobOf(entry: LedgerEntry): DialJob {
  return entry.job ?? { broadcastId: entry.broadcastId, contactId: entry.contactId, attempt: entry.attempt, number: entry.number };
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
