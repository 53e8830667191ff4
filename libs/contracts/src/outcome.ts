import type { AttemptOutcome } from './messages.js';

/** Voice API statuses Clarion understands; anything else is kept raw and shown as unclassified. */
export const KNOWN_CALL_STATUSES = [
  'started',
  'ringing',
  'answered',
  'human',
  'machine',
  'busy',
  'cancelled',
  'unanswered',
  'timeout',
  'rejected',
  'failed',
  'disconnected',
  'completed',
  'input',
  'error',
  'transfer',
  'record',
] as const;
const KNOWN = new Set<string>(KNOWN_CALL_STATUSES);

/** The part of a call event that decides an attempt's outcome. */
export interface OutcomeSignal {
  status: string;
  detail?: string | undefined;
  digits?: string | null | undefined;
}

export interface AttemptView {
  outcome: AttemptOutcome;
  /** True once the provider will send nothing more that changes the outcome. */
  final: boolean;
  /** Statuses Clarion does not know, kept raw. */
  unclassified: string[];
}

/** Higher wins: the outcome of an attempt is the strongest signal seen, in any order. */
const RANK: Record<AttemptOutcome, number> = {
  unknown: 0,
  no_answer: 1,
  failed: 2,
  rejected: 3,
  invalid_number: 4,
  busy: 5,
  answered: 6,
  voicemail: 7,
  acknowledged: 8,
};

/** An attempt outcome's strength: a later event can only move an attempt to a stronger one. */
export const outcomeRank = (outcome: AttemptOutcome): number => RANK[outcome];

function outcomeOf(signal: OutcomeSignal, ackKey: string): AttemptOutcome | undefined {
  switch (signal.status) {
    case 'answered':
    case 'human':
      return 'answered';
    case 'machine':
      return 'voicemail';
    case 'busy':
      return 'busy';
    case 'unanswered':
    case 'timeout':
    case 'cancelled':
      return 'no_answer';
    case 'rejected':
      return signal.detail === 'invalid_number' ? 'invalid_number' : 'rejected';
    case 'failed':
      return signal.detail === 'number_out_of_service' || signal.detail === 'invalid_number'
        ? 'invalid_number'
        : 'failed';
    case 'input':
      return signal.digits?.includes(ackKey) ? 'acknowledged' : 'answered';
    case 'error':
      return 'failed';
    default:
      return undefined;
  }
}

/**
 * Classify an attempt from the set of events seen so far. The result depends only on the set,
 * never on arrival order or repetition, so applying it is idempotent and monotonic.
 */
export function classifyAttempt(signals: Iterable<OutcomeSignal>, ackKey = '1'): AttemptView {
  let outcome: AttemptOutcome = 'unknown';
  let final = false;
  const unclassified = new Set<string>();
  for (const signal of signals) {
    if (!KNOWN.has(signal.status)) unclassified.add(signal.status);
    if (signal.status === 'completed' || signal.status === 'rejected' || signal.status === 'error') final = true;
    const candidate = outcomeOf(signal, ackKey);
    if (candidate && RANK[candidate] > RANK[outcome]) outcome = candidate;
  }
  return { outcome, final, unclassified: [...unclassified] };
}

/** Outcomes that mean a person (or their voicemail) heard the message. */
export const REACHED_OUTCOMES: ReadonlySet<AttemptOutcome> = new Set(['acknowledged', 'answered', 'voicemail']);
