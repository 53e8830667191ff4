import { FINAL_STATES } from '@clarion/contracts';
import type { BroadcastSummary, DemoSummary } from './demo.js';

/** States in the order operators read them: outcomes best first, then the non-call finals. */
const ORDER = FINAL_STATES;

/** One progress line, without cursor codes (the caller rewrites it in place on a terminal). */
export function renderProgress(summary: BroadcastSummary): string {
  // Before the broadcast's `enqueued` event the reporter does not know the audience yet.
  if (summary.audience === null) return `${summary.id}  ${summary.status}  waiting for the audience…`;
  const done = summary.audience - summary.pending;
  const width = 30;
  const filled = summary.audience > 0 ? Math.round((done / summary.audience) * width) : 0;
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  const parts = ORDER.filter((s) => (summary.counts[s] ?? 0) > 0).map((s) => `${s} ${summary.counts[s]}`);
  return `${bar} ${done}/${summary.audience} final  ${parts.join('  ')}`;
}

/** The closing per-outcome table of the demo. */
export function renderTable(result: DemoSummary): string {
  const lines = [
    '',
    `Broadcast ${result.broadcastId}  (${(result.durationMs / 1000).toFixed(1)} s)`,
    '',
    `  rows in file     ${result.rows}`,
    `  accepted         ${result.audience.accepted}`,
    `  invalid          ${result.audience.invalid}`,
    `  duplicate        ${result.audience.duplicate}`,
    `  suppressed       ${result.audience.suppressed}`,
    `  flagged          ${result.flagged}${result.flagged > 0 ? '  (accepted; possible numbers not known to be in service)' : ''}`,
    ...(result.invalidRows.length > 0
      ? ['', `  invalid rows${result.audience.invalid > result.invalidRows.length ? ` (first ${result.invalidRows.length})` : ''}:`, ...result.invalidRows.map((i) => `    row ${i.row}: ${i.reason}`)]
      : []),
    '',
    '  final state       contacts',
    ...ORDER.filter((s) => (result.final[s] ?? 0) > 0).map((s) => `  ${s.padEnd(18)}${String(result.final[s]).padStart(6)}`),
    `  ${'not final'.padEnd(18)}${String(result.pending).padStart(6)}`,
    '',
    `  calls placed (voice-sim)      ${result.callsPlaced}`,
    `  contacts with a first call    ${result.firstAttemptCalls}`,
    `  called twice for one attempt  ${result.contactsCalledTwiceForOneAttempt}`,
    `  most calls to one number      ${result.maxCallsPerNumber} (policy allows ${result.maxAttempts})`,
    '',
    result.ok ? '  OK: every accepted contact reached a final state.' : `  PROBLEMS:\n${result.problems.map((p) => `   - ${p}`).join('\n')}`,
    '',
  ];
  return lines.join('\n');
}
