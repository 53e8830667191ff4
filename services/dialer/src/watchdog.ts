import { classifyAttempt, type AttemptOutcome } from '@clarion/contracts';
import type { LedgerEntry, LedgerSignal } from './ledger.js';

/** Call statuses of `GET /v1/calls/{uuid}` after which the provider will change nothing more. */
export const TERMINAL_CALL_STATUSES: ReadonlySet<string> = new Set(['completed', 'busy', 'failed', 'rejected', 'unanswered', 'timeout', 'cancelled']);
/** Statuses of a call still in progress: ask again later. */
export const LIVE_CALL_STATUSES: ReadonlySet<string> = new Set(['started', 'ringing', 'answered', 'human', 'machine']);

/** What a status check says about an attempt. */
export type StatusVerdict = { kind: 'final'; outcome: AttemptOutcome } | { kind: 'live' } | { kind: 'unclear' };

/**
 * Map a polled call status through the same classification as events. A `completed` call was
 * answered (Vonage reports unanswered calls by their own status), so it counts as `answered` unless
 * the events already seen say more (voicemail, a key press).
 */
export function verdictOf(status: string, seen: readonly LedgerSignal[], ackKey: string, answered: boolean): StatusVerdict {
  if (LIVE_CALL_STATUSES.has(status)) return { kind: 'live' };
  if (!TERMINAL_CALL_STATUSES.has(status)) return { kind: 'unclear' };
  const signals: LedgerSignal[] = [...seen, { status }];
  if (status === 'completed' || answered) signals.push({ status: 'answered' });
  return { kind: 'final', outcome: classifyAttempt(signals, ackKey).outcome };
}

/** When the watchdog should next look at an attempt that was placed but has no outcome yet. */
export function checkDueAt(entry: LedgerEntry, resultTimeoutMs: number): number {
  return entry.nextCheckAt ?? (entry.placedAt ?? entry.ambiguousSince ?? entry.claimedAt) + resultTimeoutMs;
}
