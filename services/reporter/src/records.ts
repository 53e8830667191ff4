import {
  classifyAttempt,
  FINAL_STATES,
  REACHED_OUTCOMES,
  type AttemptOutcome,
  type BroadcastCounts,
  type BroadcastStatus,
  type BroadcastSummary,
  type RetryWindow,
} from '@clarion/contracts';

// The summary the REST API, the SSE stream and the dashboard show: its shape is shared with the CLI.
export type { BroadcastStatus, BroadcastSummary, RetryWindow };

/** Collection names; prefixed so they never collide with the contacts service's own collections. */
export const COLLECTIONS = {
  broadcasts: 'report_broadcasts',
  contacts: 'report_contacts',
  attempts: 'report_attempts',
} as const;

/** States of a contact that is not final yet. */
export const PENDING_STATES = ['queued', 'calling', 'waiting_retry'] as const;
export type PendingState = (typeof PENDING_STATES)[number];
export const FINAL_STATE_SET: ReadonlySet<string> = new Set(FINAL_STATES);


/** One broadcast as stored; every field is written with commutative operators ($min/$max/$addToSet/$set of constants). */
export interface BroadcastDoc {
  [key: string]: unknown;
  _id: string;
  name?: string;
  priority?: 'critical' | 'normal';
  createdAt?: string;
  firstSeenAt?: string;
  counts?: BroadcastCounts;
  audience?: number;
  enqueuedAt?: string;
  /** Lifecycle events as `<at>|<type>` strings: a set, so order and repetition do not matter. */
  lifecycle?: StoredSet;
  /** The reasons given with lifecycle events, as `<at>|<type>|<reason>` strings (a set too). */
  lifecycleReasons?: StoredSet;
  reason?: string;
  /** Whether people are asked to press a key to confirm; absent when the events did not say. */
  acknowledgement?: boolean;
  firstCallAt?: string;
  lastCallAt?: string;
  lastFinalAt?: string;
  /** Final contacts per state, incremented exactly once per contact (see Aggregation.count). */
  finalCounts?: Record<string, number>;
  finalTotal?: number;
  /** Batches already added to the counters: the guard that makes a replayed increment a no-op. */
  countedBatches?: string[];
  /** Snapshot refreshed after writes, for listing and filtering; the detail endpoint recomputes. */
  status?: BroadcastStatus;
  completedAt?: string | null;
}

/** One contact of one broadcast (`_id` = `<bid>:<cid>`). */
export interface ContactDoc {
  [key: string]: unknown;
  _id: string;
  broadcastId: string;
  contactId: string;
  number?: string;
  name?: string;
  state: string;
  final: boolean;
  /** attempt * 10 + phase rank: the pending state only ever moves to a higher progress. */
  progress: number;
  attempts?: number;
  lastOutcome?: string;
  reason?: string;
  /** When the next attempt is due (ISO); meaningful only while `state` is `waiting_retry`. */
  retryAt?: string;
  finalAt?: string;
  updatedAt?: string;
  /** The batch whose write made the contact final; `uncounted` until the counters include it. */
  finalBatch?: string;
  uncounted?: boolean;
  /**
   * A correction (a late event proved a better outcome) moved the final state from this one; the
   * counters still count it here until the batch `upgradeBatch` moves it over.
   */
  recountFrom?: string;
  upgradeBatch?: string;
}

/** One call attempt (`_id` = `<bid>:<cid>:<n>`). */
export interface AttemptDoc {
  [key: string]: unknown;
  _id: string;
  broadcastId: string;
  contactId: string;
  attempt: number;
  uuid?: string;
  number?: string;
  statuses?: StoredSet;
  /** `status|detail|digits` strings: the set classifyAttempt reads. */
  signals?: StoredSet;
  details?: StoredSet;
  digits?: StoredSet;
  dialerOutcome?: string;
  /** Why the dialer refused or could not confirm the attempt (a set: order independent). */
  reasons?: StoredSet;
  placedAt?: string;
  answeredAt?: string;
  endedAt?: string;
  duration?: number;
  price?: number;
}

/** A set stored as `{<key>: member}` (see UpsertSet.add); plain arrays are read too. */
export type StoredSet = string[] | Record<string, string>;

/** The field name a set member is stored under: safe in MongoDB paths (no `.`, no leading `$` or digit). */
export const setMemberKey = (value: string): string => `k${Buffer.from(value).toString('base64url')}`;

/** The members of a stored set. */
export const members = (set: StoredSet | undefined): string[] => (set === undefined ? [] : Array.isArray(set) ? [...set] : Object.values(set));

export const contactKey = (bid: string, cid: string): string => `${bid}:${cid}`;
export const attemptDocKey = (bid: string, cid: string, n: number): string => `${bid}:${cid}:${n}`;

/** Encode one outcome signal as a set member. */
export function encodeSignal(status: string, detail?: string, digits?: string | null): string {
  return [status, detail ?? '', digits ?? ''].map((p) => p.replaceAll('|', '/')).join('|');
}

/** An attempt as the API shows it: outcome computed from the set of signals, so order never matters. */
export interface AttemptView {
  id: string;
  broadcastId: string;
  contactId: string;
  attempt: number;
  uuid: string | null;
  number: string | null;
  outcome: AttemptOutcome;
  final: boolean;
  statuses: string[];
  unclassified: string[];
  details: string[];
  digits: string[];
  reason: string | null;
  placedAt: string | null;
  answeredAt: string | null;
  endedAt: string | null;
  duration: number | null;
  price: number | null;
}

export function viewAttempt(doc: AttemptDoc): AttemptView {
  const signals = members(doc.signals).map((s) => {
    const [status = '', detail = '', digits = ''] = s.split('|');
    return { status, detail: detail || undefined, digits: digits || undefined };
  });
  const classified = classifyAttempt(signals);
  let outcome = classified.outcome;
  // Attempts the provider never reported on (refused, ambiguous) take the dialer's verdict.
  if (outcome === 'unknown' && doc.dialerOutcome) outcome = doc.dialerOutcome as AttemptOutcome;
  return {
    id: doc._id,
    broadcastId: doc.broadcastId,
    contactId: doc.contactId,
    attempt: doc.attempt,
    uuid: doc.uuid ?? null,
    number: doc.number ?? null,
    outcome,
    final: classified.final,
    statuses: members(doc.statuses).sort(),
    unclassified: classified.unclassified.sort(),
    details: members(doc.details).sort(),
    digits: members(doc.digits).sort(),
    reason: members(doc.reasons).length > 0 ? members(doc.reasons).sort().join('; ') : null,
    placedAt: doc.placedAt ?? null,
    answeredAt: doc.answeredAt ?? null,
    endedAt: doc.endedAt ?? null,
    duration: doc.duration ?? null,
    price: doc.price ?? null,
  };
}

/** A contact as the API shows it. */
export function viewContact(doc: ContactDoc) {
  return {
    id: doc.contactId,
    broadcastId: doc.broadcastId,
    number: doc.number ?? null,
    name: doc.name ?? null,
    state: doc.state,
    final: doc.final,
    attempts: doc.attempts ?? 0,
    lastOutcome: doc.lastOutcome ?? null,
    reason: doc.reason ?? null,
    retryAt: doc.state === 'waiting_retry' ? (doc.retryAt ?? null) : null,
    updatedAt: doc.updatedAt ?? null,
  };
}
export type ContactView = ReturnType<typeof viewContact>;

/** Final states that mean the contact was actually called (the denominator of the answer rate). */
const CALLED_STATES = new Set(['acknowledged', 'answered', 'voicemail', 'busy', 'no_answer', 'rejected', 'failed', 'invalid_number', 'unknown']);

const round = (n: number, digits = 4): number => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Cancelled is terminal. Otherwise the latest pause, halt or resume decides: a halted broadcast (the
 * Voice API refused the account) runs again once resumed. Equal times: the stop wins.
 */
function lifecycleStatus(lifecycle: string[]): { cancelled: boolean; cancelledAt: string | undefined; halted: boolean; paused: boolean; pausedAt: string | undefined } {
  let cancelledAt: string | undefined;
  let latest: { at: string; type: string } | undefined;
  for (const entry of lifecycle) {
    const cut = entry.lastIndexOf('|');
    const at = entry.slice(0, cut);
    const type = entry.slice(cut + 1);
    if (type === 'cancelled' && (cancelledAt === undefined || at < cancelledAt)) cancelledAt = at;
    if (type === 'paused' || type === 'halted' || type === 'resumed') {
      if (!latest || at > latest.at || (at === latest.at && type !== 'resumed')) latest = { at, type };
    }
  }
  const paused = latest?.type === 'paused';
  return { cancelled: cancelledAt !== undefined, cancelledAt, halted: latest?.type === 'halted', paused, pausedAt: paused ? latest?.at : undefined };
}

/** The lifecycle events with their reasons, oldest first. */
function lifecycleEntries(doc: BroadcastDoc): BroadcastSummary['lifecycle'] {
  const reasons = new Map<string, string>();
  for (const entry of members(doc.lifecycleReasons)) {
    // `<at>|<type>|<reason>`: times and types hold no `|`, a reason may.
    const first = entry.indexOf('|');
    const second = entry.indexOf('|', first + 1);
    if (first > 0 && second > first) reasons.set(entry.slice(0, second), entry.slice(second + 1));
  }
  return members(doc.lifecycle)
    .map((entry) => {
      const cut = entry.lastIndexOf('|');
      return { at: entry.slice(0, cut), type: entry.slice(cut + 1), reason: reasons.get(entry) ?? null };
    })
    .sort((a, b) => (a.at === b.at ? a.type.localeCompare(b.type) : a.at < b.at ? -1 : 1));
}

/**
 * Build the summary from the broadcast record and the number of contacts per state.
 * Contacts not seen yet count as `queued`, so counts always add up to the audience once it is known.
 */
export function summarize(
  doc: BroadcastDoc,
  stateCounts: Record<string, number>,
  attempts: number,
  now: Date,
  retryWindow: RetryWindow = { nextAt: null, lastAt: null },
): BroadcastSummary {
  const counts: Record<string, number> = {};
  let known = 0;
  let final = 0;
  for (const [state, n] of Object.entries(stateCounts)) {
    if (n <= 0) continue;
    counts[state] = n;
    known += n;
    if (FINAL_STATE_SET.has(state)) final += n;
  }
  const audience = doc.audience ?? null;
  if (audience !== null && known < audience) counts.queued = (counts.queued ?? 0) + (audience - known);
  const total = audience ?? known;
  const pending = Math.max(0, total - final);
  const done = audience !== null && final >= audience;
  const life = lifecycleStatus(members(doc.lifecycle));
  // Every contact final is completed even if a halt came after (it halted nothing left to call), and
  // so is one whose last contact was final before a cancel arrived (it cancelled nothing).
  const completedFirst = done && life.cancelledAt !== undefined && doc.lastFinalAt !== undefined && doc.lastFinalAt < life.cancelledAt;
  const status: BroadcastStatus = life.cancelled && !completedFirst
    ? 'cancelled'
    : done
      ? 'completed'
      : life.halted
        ? 'halted'
        : life.paused
          ? 'paused'
          : doc.enqueuedAt || doc.firstCallAt || known > 0
            ? 'running'
            : 'created';
  const completedAt = done ? (doc.lastFinalAt ?? doc.enqueuedAt ?? null) : null;

  let callsPerMinute: number | null = null;
  if (doc.firstCallAt && attempts > 0) {
    const end = done && completedAt ? Date.parse(completedAt) : Math.max(now.getTime(), Date.parse(doc.lastCallAt ?? doc.firstCallAt));
    const minutes = Math.max((end - Date.parse(doc.firstCallAt)) / 60_000, 1 / 60);
    callsPerMinute = round(attempts / minutes, 2);
  }
  let called = 0;
  let reached = 0;
  for (const [state, n] of Object.entries(counts)) {
    if (CALLED_STATES.has(state)) called += n;
    if (REACHED_OUTCOMES.has(state as AttemptOutcome)) reached += n;
  }
  const acknowledged = counts.acknowledged ?? 0;
  const waiting = counts.waiting_retry ?? 0;
  const retries = waiting > 0 ? { waiting, ...retryWindow } : { waiting, nextAt: null, lastAt: null };
  let etaSeconds: number | null = null;
  if (done) etaSeconds = 0;
  else if (status === 'running') {
    const byRate = callsPerMinute && callsPerMinute > 0 ? Math.ceil((pending / callsPerMinute) * 60) : null;
    // A contact waiting out a retry delay cannot be final before its retry is due, whatever the call rate says.
    const byRetry = retries.lastAt ? Math.max(0, Math.ceil((Date.parse(retries.lastAt) - now.getTime()) / 1000)) : null;
    if (byRate !== null || byRetry !== null) etaSeconds = Math.max(byRate ?? 0, byRetry ?? 0);
  }
  const lifecycle = lifecycleEntries(doc);
  const pauseReason = life.pausedAt === undefined ? undefined : lifecycle.find((e) => e.at === life.pausedAt && e.type === 'paused')?.reason;
  return {
    id: doc._id,
    name: doc.name ?? null,
    priority: doc.priority ?? null,
    status,
    // A halt's reason only while halted (resumed, it no longer explains anything).
    reason: status === 'cancelled' || status === 'halted' ? (doc.reason ?? null) : status === 'paused' ? (pauseReason ?? null) : null,
    lifecycle,
    acknowledgement: doc.acknowledgement ?? null,
    audience,
    counts,
    pending,
    final,
    done,
    attempts,
    timings: {
      createdAt: doc.createdAt ?? doc.firstSeenAt ?? null,
      firstCallAt: doc.firstCallAt ?? null,
      lastCallAt: doc.lastCallAt ?? null,
      completedAt,
    },
    rates: {
      callsPerMinute,
      answerRate: called > 0 ? round(reached / called) : null,
      // Nobody can confirm when the broadcast did not ask: no rate rather than 0 %.
      confirmationRate: doc.acknowledgement !== false && reached > 0 ? round(acknowledged / reached) : null,
    },
    retries,
    eta: etaSeconds === null ? null : done ? completedAt : new Date(now.getTime() + etaSeconds * 1000).toISOString(),
    etaSeconds,
  };
}
