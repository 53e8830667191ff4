import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import type { SimOutcome, SimSettings } from './config.js';
import { chooseOutcome, overrideFor, seededUuid, uniform } from './outcomes.js';
import { RollingWindow } from './rate.js';
import { nccoProblems, type CreateCallBody, type NccoAction } from './schemas.js';
import { ANSWER_RETRY_STATUSES, sendWebhook, type WebhookResult } from './webhooks.js';
import type { WebhookSigner } from './auth.js';
import type { HttpSend } from './http-send.js';

/** Milliseconds since the epoch; injectable so tests control rate windows and guards. */
export interface Clock {
  now(): number;
}

/** One webhook delivery as the ground truth records it. */
export interface DeliveryRecord {
  status: string;
  url: string;
  sent_at: string | null;
  delivered: boolean;
  http_status: number | null;
  attempts: number;
  /** Why the last try failed when no HTTP status came back (timeout, reset, refused). */
  error?: string;
  duplicate?: boolean;
}

/** A placed call (internal state plus the ground truth). */
export interface SimCall {
  index: number;
  uuid: string;
  conversationUuid: string;
  to: string;
  from: string;
  createdAt: number;
  outcome: SimOutcome;
  body: CreateCallBody;
  status: string;
  digits: string | null;
  answeredAt?: number;
  endedAt?: number;
  talkSec: number;
  disconnectedBy?: 'user' | 'platform';
  events: DeliveryRecord[];
  answer?: { url: string; attempts: number; http_status: number | null; fallback: boolean; ok: boolean; error?: string };
  abort: AbortController;
  hangupRequested: boolean;
  chain: Promise<void>;
  held?: Record<string, unknown> | undefined;
  heldFinal?: Record<string, unknown> | undefined;
  detached: Promise<void>[];
  reorder: boolean;
  eventCount: number;
  attemptForNumber: number;
  done: Promise<void>;
}

const ERROR_REASON = 'Syntax error in NCCO. Invalid value type or action.';
const RATE = '0.00450000';
const NETWORK = 'US-VIRTUAL-LEVEL3';
const REGION_URL = 'https://api-us-3.vonage.com';
const MAX_NCCO_STEPS = 200;
const FINAL_STATUSES = new Set(['busy', 'failed', 'unanswered', 'timeout', 'cancelled', 'rejected']);

class CallEnded extends Error {
  override readonly name = 'CallEnded';
}

/** Options for the engine. */
export interface EngineDeps {
  settings: () => SimSettings;
  clock: Clock;
  fetch: HttpSend;
  signer?: WebhookSigner | undefined;
  logFile?: string | undefined;
  onError?: (message: string, error: unknown) => void;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The simulated telephone network: places calls and plays them out, sending webhooks. */
export class Engine {
  readonly calls = new Map<string, SimCall>();
  readonly order: SimCall[] = [];
  readonly cpsWindow: RollingWindow;
  readonly otherWindow: RollingWindow;
  stats = { rejected_429: 0, rejected_429_other: 0, requests: 0, create_requests: 0, create_5xx: 0, timeouts_after_place: 0 };
  private callsPerNumber = new Map<string, number>();
  private createRequestsPerNumber = new Map<string, number>();
  private stopping = new AbortController();
  private epoch = 0;

  constructor(private readonly deps: EngineDeps) {
    this.cpsWindow = new RollingWindow(deps.settings().cps);
    this.otherWindow = new RollingWindow(deps.settings().otherRps);
  }

  private get s(): SimSettings {
    return this.deps.settings();
  }

  /** Apply changed limits to the windows. */
  refreshLimits(): void {
    this.cpsWindow.limit = this.s.cps;
    this.otherWindow.limit = this.s.otherRps;
  }

  /** The create-request index for a number (drives 5xx and timeout faults deterministically). */
  nextCreateRequest(number: string): number {
    const n = this.createRequestsPerNumber.get(number) ?? 0;
    this.createRequestsPerNumber.set(number, n + 1);
    return n;
  }

  /** Create the call record, log it, and start playing it in the background. */
  place(body: CreateCallBody): SimCall {
    const to = body.to[0]!.number;
    const from = body.from?.number ?? '14155550100';
    const attemptForNumber = this.callsPerNumber.get(to) ?? 0;
    this.callsPerNumber.set(to, attemptForNumber + 1);
    const index = this.order.length;
    const s = this.s;
    const deterministic = s.deterministicIds;
    const uuid = deterministic ? seededUuid(s.seed, this.epoch, index) : randomUUID();
    const conversationUuid = `CON-${deterministic ? seededUuid(s.seed, 'con', this.epoch, index) : randomUUID()}`;
    const call: SimCall = {
      index,
      uuid,
      conversationUuid,
      to,
      from,
      createdAt: this.deps.clock.now(),
      outcome: chooseOutcome(s, to, attemptForNumber),
      body,
      status: 'started',
      digits: null,
      talkSec: 0,
      events: [],
      abort: new AbortController(),
      hangupRequested: false,
      chain: Promise.resolve(),
      detached: [],
      reorder: uniform(s.seed, 'reorder', to, attemptForNumber) < s.faults.reorderRate,
      eventCount: 0,
      attemptForNumber,
      done: Promise.resolve(),
    };
    this.calls.set(uuid, call);
    this.order.push(call);
    if (this.deps.logFile) {
      // Written before the call is visible anywhere (its create response, /_sim/calls): the ground
      // truth must hold every placed call even when the simulator is SIGKILLed right after.
      try {
        appendFileSync(this.deps.logFile, `${JSON.stringify(this.groundTruth(call))}\n`);
      } catch (error) {
        this.deps.onError?.('cannot append to VOICE_SIM_LOG_FILE', error);
      }
    }
    call.done = this.play(call).catch((error: unknown) => this.deps.onError?.('call simulation failed', error));
    return call;
  }

  /** Calls placed per number. */
  callsPerNumberObject(): Record<string, number> {
    return Object.fromEntries(this.callsPerNumber);
  }

  /** `PUT hangup`: before the answer → cancelled; after → completed. */
  hangup(call: SimCall): void {
    if (call.endedAt !== undefined || call.hangupRequested) return;
    call.hangupRequested = true;
    call.abort.abort(new CallEnded('hangup'));
  }

  /** The ground-truth view of a call. */
  groundTruth(call: SimCall) {
    return {
      uuid: call.uuid,
      conversation_uuid: call.conversationUuid,
      to: call.to,
      from: call.from,
      created_at: iso(call.createdAt),
      ended_at: call.endedAt !== undefined ? iso(call.endedAt) : null,
      outcome: call.outcome,
      status: call.status,
      answer_url: call.body.answer_url?.[0] ?? null,
      event_url: call.body.event_url?.[0] ?? null,
      digits: call.digits,
      duration: call.endedAt !== undefined && call.answeredAt !== undefined ? Math.round(call.talkSec) : 0,
      answer: call.answer ?? null,
      events: call.events,
    };
  }

  /** Forget everything (calls, counters, windows); running plays are aborted silently. */
  async reset(): Promise<void> {
    await this.abortAll();
    this.calls.clear();
    this.order.length = 0;
    this.callsPerNumber.clear();
    this.createRequestsPerNumber.clear();
    this.cpsWindow.reset();
    this.otherWindow.reset();
    this.stats = { rejected_429: 0, rejected_429_other: 0, requests: 0, create_requests: 0, create_5xx: 0, timeouts_after_place: 0 };
    this.epoch += 1;
    this.stopping = new AbortController();
  }

  private async abortAll(): Promise<void> {
    this.stopping.abort();
    for (const call of this.order) if (call.endedAt === undefined) call.abort.abort(new CallEnded('stopped'));
    await Promise.allSettled(this.order.map((c) => c.done));
    await Promise.allSettled(this.order.flatMap((c) => [c.chain, ...c.detached]));
  }

  /** Wait up to `graceMs` for calls in progress, then abort the rest. */
  async stop(graceMs = 0): Promise<void> {
    const pending = Promise.allSettled(this.order.map((c) => c.done.then(() => Promise.all([c.chain, ...c.detached]))));
    let timer: NodeJS.Timeout | undefined;
    if (graceMs > 0) await Promise.race([pending, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    await this.abortAll();
  }

  // ---- playing a call ----

  private sleep(call: SimCall, seconds: number): Promise<void> {
    const ms = seconds * 1000 * this.s.timeScale;
    const signal = call.abort.signal;
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      const done = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Talk time counts towards `length_timer`; reaching it ends the call. */
  private async talk(call: SimCall, seconds: number): Promise<void> {
    const left = call.body.length_timer - call.talkSec;
    if (seconds >= left) {
      await this.sleep(call, Math.max(0, left));
      call.talkSec = call.body.length_timer;
      throw new CallEnded('length_timer');
    }
    await this.sleep(call, seconds);
    call.talkSec += seconds;
  }

  private base(call: SimCall, status: string): Record<string, unknown> {
    return { headers: {}, from: call.from, to: call.to, uuid: call.uuid, conversation_uuid: call.conversationUuid, status, direction: 'outbound', timestamp: iso(this.deps.clock.now()) };
  }

  /** Queue a status event for delivery in order (with the duplicate / delay / reorder faults). */
  private emit(call: SimCall, payload: Record<string, unknown>): void {
    const status = String(payload.status ?? 'error');
    if (status !== 'error' && !['human', 'machine'].includes(status)) call.status = status === 'completed' && call.answeredAt === undefined ? call.status : status;
    if (call.reorder && status === 'completed') {
      this.enqueue(call, payload);
      this.flushHeld(call, true);
      return;
    }
    if (call.reorder) {
      // started/ringing swap, and a final status arrives after completed, as Vonage allows.
      if (status === 'started') {
        call.held = payload;
        return;
      }
      if (FINAL_STATUSES.has(status)) {
        call.heldFinal = payload;
        this.flushHeld(call);
        return;
      }
      this.enqueue(call, payload);
      this.flushHeld(call);
      return;
    }
    this.enqueue(call, payload);
  }

  private flushHeld(call: SimCall, final = false): void {
    const held = call.held;
    call.held = undefined;
    if (held) this.enqueue(call, held);
    const heldFinal = call.heldFinal;
    if (final && heldFinal) {
      call.heldFinal = undefined;
      this.enqueue(call, heldFinal);
    }
  }

  private enqueue(call: SimCall, payload: Record<string, unknown>): void {
    const s = this.s;
    const n = call.eventCount++;
    const url = call.body.event_url?.[0];
    if (!url) return;
    const key = [call.to, call.attemptForNumber, n] as const;
    const copies = uniform(s.seed, 'dup', ...key) < s.faults.duplicateEventRate ? 2 : 1;
    const delayed = s.faults.delayEventMs > 0 && uniform(s.seed, 'delay', ...key) < s.faults.delayEventRate;
    for (let copy = 0; copy < copies; copy += 1) {
      const record: DeliveryRecord = { status: String(payload.status ?? 'error'), url, sent_at: null, delivered: false, http_status: null, attempts: 0, ...(copy > 0 ? { duplicate: true } : {}) };
      call.events.push(record);
      const deliver = async () => {
        record.sent_at = iso(this.deps.clock.now());
        const result = await sendWebhook(
          { url, method: call.body.event_method, payload, timeoutMs: s.webhooks.eventTimeoutMs, attempts: s.webhooks.eventAttempts, retryStatus: (st) => st >= 500 || st === 429 },
          { fetch: this.deps.fetch, now: () => this.deps.clock.now(), signer: this.deps.signer, signal: this.stopping.signal },
        );
        record.delivered = result.ok;
        record.http_status = result.status ?? null;
        record.attempts = result.attempts;
    if (!result.ok && result.error) record.error = result.error;
        if (!result.ok && result.error) record.error = result.error;
      };
      if (delayed) {
        // A delayed copy runs on its own, so later events overtake it.
        call.detached.push(new Promise<void>((resolve) => setTimeout(resolve, s.faults.delayEventMs)).then(deliver).catch((error: unknown) => this.deps.onError?.('event delivery failed', error)));
      } else {
        call.chain = call.chain.then(deliver).catch((error: unknown) => this.deps.onError?.('event delivery failed', error));
      }
    }
  }

  private completed(call: SimCall, disconnectedBy: 'user' | 'platform', sipCode = 200): void {
    const now = this.deps.clock.now();
    call.endedAt = now;
    call.disconnectedBy = disconnectedBy;
    const answered = call.answeredAt !== undefined;
    const duration = answered ? Math.round(call.talkSec) : 0;
    const price = ((duration / 60) * Number(RATE)).toFixed(8);
    this.emit(call, {
      ...this.base(call, 'completed'),
      start_time: answered ? iso(call.answeredAt!) : null,
      end_time: iso(now),
      duration: String(duration),
      rate: RATE,
      price,
      network: NETWORK,
      disconnected_by: disconnectedBy,
      sip_code: sipCode,
    });
  }

  private async play(call: SimCall): Promise<void> {
    const d = this.s.durations;
    const override = overrideFor(this.s, call.to);
    this.emit(call, this.base(call, 'started'));
    try {
      await this.sleep(call, call.outcome === 'failed' || call.outcome === 'rejected' || call.outcome === 'invalid_number' ? d.failDelaySec : d.ringDelaySec);
      switch (call.outcome) {
        case 'rejected':
        case 'invalid_number':
          call.endedAt = this.deps.clock.now();
          this.emit(call, { ...this.base(call, 'rejected'), detail: call.outcome === 'invalid_number' ? 'invalid_number' : 'declined', sip_code: call.outcome === 'invalid_number' ? 404 : 603 });
          return;
        case 'failed':
          this.emit(call, { ...this.base(call, 'failed'), detail: 'cannot_route', sip_code: 404 });
          this.completed(call, 'platform', 404);
          return;
        default:
          break;
      }
      this.emit(call, this.base(call, 'ringing'));
      const ringingTimer = call.body.ringing_timer;
      if (call.outcome === 'busy') {
        await this.sleep(call, override.ringSec ?? d.busyDelaySec);
        this.emit(call, { ...this.base(call, 'busy'), sip_code: 486 });
        this.completed(call, 'platform', 486);
        return;
      }
      const answers = call.outcome === 'answered_ack' || call.outcome === 'answered' || call.outcome === 'machine';
      const ring = override.ringSec ?? (answers ? d.answerDelaySec : d.noAnswerSec);
      if (call.outcome === 'timeout' || ring >= ringingTimer) {
        await this.sleep(call, ringingTimer);
        this.emit(call, this.base(call, 'timeout'));
        this.completed(call, 'platform', 487);
        return;
      }
      await this.sleep(call, ring);
      if (call.outcome === 'cancelled') {
        this.emit(call, this.base(call, 'cancelled'));
        this.completed(call, 'platform', 487);
        return;
      }
      if (!answers) {
        this.emit(call, { ...this.base(call, 'unanswered'), detail: this.s.validation.unansweredDetail, sip_code: 480 });
        this.completed(call, 'platform', 480);
        return;
      }
      await this.answered(call);
    } catch (error) {
      if (!(error instanceof CallEnded) && !(call.abort.signal.aborted)) throw error;
      const reason = error instanceof CallEnded ? error.message : String((call.abort.signal.reason as Error)?.message);
      if (reason === 'stopped') return;
      if (reason === 'hangup' && call.answeredAt === undefined) {
        this.emit(call, this.base(call, 'cancelled'));
        this.completed(call, 'platform', 487);
      } else if (call.endedAt === undefined) {
        this.completed(call, 'platform');
      }
    } finally {
      call.endedAt ??= this.deps.clock.now();
      this.flushHeld(call, true);
    }
  }

  private async answered(call: SimCall): Promise<void> {
    const s = this.s;
    const d = s.durations;
    call.answeredAt = this.deps.clock.now();
    this.emit(call, { ...this.base(call, 'answered'), start_time: null, rate: null, network: null });
    const isMachine = call.outcome === 'machine';
    const amd = call.body.advanced_machine_detection;
    const behavior = amd?.behavior ?? call.body.machine_detection;
    if (behavior) {
      const synchronous = amd !== undefined && amd.mode !== 'default';
      if (synchronous || !amd) await this.sleep(call, d.machineDetectSec);
      const md = (status: string, extra: Record<string, unknown> = {}) => {
        const { uuid, ...rest } = this.base(call, status);
        this.emit(call, { ...rest, call_uuid: uuid, ...extra });
      };
      md(isMachine ? 'machine' : 'human');
      if (isMachine && amd?.mode === 'detect_beep') {
        if (d.beepSec > amd.beep_timeout) {
          await this.sleep(call, amd.beep_timeout);
          md('machine', { sub_state: 'beep_timeout' });
        } else {
          await this.sleep(call, d.beepSec);
          md('machine', { sub_state: 'beep_start' });
        }
      }
      if (isMachine && behavior === 'hangup') {
        this.completed(call, 'platform');
        return;
      }
    }
    let ncco: NccoAction[] | undefined;
    if (call.body.ncco !== undefined) {
      ncco = this.checkNcco(call, call.body.ncco);
    } else {
      ncco = await this.fetchAnswer(call);
    }
    if (!ncco) return;
    await this.run(call, ncco);
    if (call.endedAt === undefined) this.completed(call, 'platform');
  }

  /** A valid NCCO, or undefined after sending the error event and ending the call. */
  private checkNcco(call: SimCall, raw: unknown): NccoAction[] | undefined {
    if (nccoProblems(raw).length > 0) {
      this.emit(call, { reason: ERROR_REASON, conversation_uuid: call.conversationUuid, timestamp: iso(this.deps.clock.now()) });
      this.completed(call, 'platform');
      return undefined;
    }
    return raw as NccoAction[];
  }

  private webhookDeps() {
    return { fetch: this.deps.fetch, now: () => this.deps.clock.now(), signer: this.deps.signer, signal: this.stopping.signal };
  }

  /** answer_url twice, then the application's fallback twice; all failing ends the call. */
  private async fetchAnswer(call: SimCall): Promise<NccoAction[] | undefined> {
    const s = this.s;
    const url = call.body.answer_url![0]!;
    const payload = { to: call.to, from: call.from, uuid: call.uuid, conversation_uuid: call.conversationUuid, region_url: REGION_URL, endpoint_type: 'phone' };
    await call.chain;
    const request = (u: string, p: Record<string, unknown>) =>
      sendWebhook({ url: u, method: call.body.answer_method, payload: p, timeoutMs: s.webhooks.answerTimeoutMs, attempts: s.webhooks.answerAttempts, retryStatus: (st) => ANSWER_RETRY_STATUSES.has(st) }, this.webhookDeps());
    let result: WebhookResult = await request(url, payload);
    call.answer = { url, attempts: result.attempts, http_status: result.status ?? null, fallback: false, ok: result.ok, ...(result.error ? { error: result.error } : {}) };
    const fallback = s.webhooks.fallbackAnswerUrl;
    if (!result.ok && fallback) {
      result = await request(fallback, { ...payload, reason: result.error ?? `HTTP ${result.status}`, original_request: { url, type: 'answer' } });
      call.answer = { url: fallback, attempts: call.answer.attempts + result.attempts, http_status: result.status ?? null, fallback: true, ok: result.ok, ...(result.error ? { error: result.error } : {}) };
    }
    if (call.abort.signal.aborted) throw call.abort.signal.reason as Error;
    if (!result.ok) {
      this.completed(call, 'platform');
      return undefined;
    }
    return this.checkNcco(call, parseJson(result.body));
  }

  private async run(call: SimCall, initial: NccoAction[]): Promise<void> {
    const d = this.s.durations;
    let queue = [...initial];
    for (let steps = 0; queue.length > 0 && steps < MAX_NCCO_STEPS; steps += 1) {
      const action = queue.shift()!;
      switch (action.action) {
        case 'talk': {
          const text = action.text.replace(/<[^>]*>/g, '');
          const once = Math.max(1, Math.ceil(text.length / d.speechCharsPerSec));
          await this.talk(call, action.loop === 0 ? Number.POSITIVE_INFINITY : once * (action.loop ?? 1));
          break;
        }
        case 'stream':
          await this.talk(call, action.loop === 0 ? Number.POSITIVE_INFINITY : d.streamSec * (action.loop ?? 1));
          break;
        case 'wait':
          await this.talk(call, action.timeout ?? 10);
          break;
        case 'record':
          await this.talk(call, action.endOnSilence ?? 3);
          break;
        case 'connect':
        case 'conversation':
          await this.talk(call, d.actionSec);
          break;
        case 'notify': {
          const reply = await this.nccoWebhook(call, action.eventUrl[0]!, action.eventMethod ?? 'POST', action.payload, 'notify');
          if (reply === 'invalid') return;
          if (reply) queue = reply;
          break;
        }
        case 'input': {
          const payload = await this.collectInput(call, action);
          const url = action.eventUrl?.[0] ?? call.body.event_url![0]!;
          const reply = await this.nccoWebhook(call, url, action.eventMethod ?? 'POST', payload, 'input');
          if (reply === 'invalid') return;
          if (reply) queue = reply;
          break;
        }
      }
    }
  }

  private async collectInput(call: SimCall, action: Extract<NccoAction, { action: 'input' }>): Promise<Record<string, unknown>> {
    const d = this.s.durations;
    const timeOut = action.dtmf?.timeOut ?? 3;
    const maxDigits = action.dtmf?.maxDigits ?? 4;
    let digits: string | null = null;
    let timedOut = true;
    if (action.type.includes('dtmf') && call.outcome === 'answered_ack') {
      await this.talk(call, d.keyDelaySec);
      let keys = overrideFor(this.s, call.to).digits ?? this.s.ackDigits;
      if (action.dtmf?.submitOnHash && keys.includes('#')) {
        keys = keys.slice(0, keys.indexOf('#'));
        timedOut = false;
      } else if (keys.length >= maxDigits) {
        keys = keys.slice(0, maxDigits);
        timedOut = false;
      } else {
        await this.talk(call, timeOut);
      }
      digits = keys;
      call.digits = keys;
    } else {
      await this.talk(call, timeOut);
    }
    const speech: Record<string, unknown> = action.type.includes('speech') ? { results: [], timeout_reason: 'start_timeout' } : { results: [] };
    return { speech, dtmf: { digits, timed_out: timedOut }, from: call.from, to: call.to, uuid: call.uuid, conversation_uuid: call.conversationUuid, timestamp: iso(this.deps.clock.now()) };
  }

  /** input / notify callbacks: a reply NCCO replaces the rest; failures let the call continue. */
  private async nccoWebhook(call: SimCall, url: string, method: 'GET' | 'POST', payload: Record<string, unknown>, kind: string): Promise<NccoAction[] | 'invalid' | undefined> {
    const s = this.s;
    await call.chain;
    const record: DeliveryRecord = { status: kind, url, sent_at: iso(this.deps.clock.now()), delivered: false, http_status: null, attempts: 0 };
    call.events.push(record);
    const result = await sendWebhook({ url, method, payload, timeoutMs: s.webhooks.answerTimeoutMs, attempts: s.webhooks.answerAttempts, retryStatus: (st) => ANSWER_RETRY_STATUSES.has(st) || st >= 500 }, this.webhookDeps());
    record.delivered = result.ok;
    record.http_status = result.status ?? null;
    record.attempts = result.attempts;
    if (!result.ok && result.error) record.error = result.error;
    if (call.abort.signal.aborted) throw call.abort.signal.reason as Error;
    if (!result.ok || !result.body || result.body.trim() === '') return undefined;
    const reply = parseJson(result.body);
    if (Array.isArray(reply) && reply.length === 0) return undefined;
    const ncco = this.checkNcco(call, reply);
    return ncco ?? 'invalid';
  }
}

function parseJson(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? '');
  } catch {
    return text;
  }
}
