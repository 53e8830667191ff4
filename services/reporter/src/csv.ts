import type { AttemptView, ContactView } from './records.js';

/** Quote a CSV cell (RFC 4180) and defuse spreadsheet formulas in free text (not in plain numbers). */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = Array.isArray(value) ? value.join(' ') : String(value);
  if (/^[=+\-@\t\r]/.test(text) && !/^[+-]?\d[\d.]*$/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const row = (cells: unknown[]): string => `${cells.map(csvCell).join(',')}\r\n`;

export const CONTACT_COLUMNS = ['contactId', 'number', 'name', 'state', 'final', 'attempts', 'lastOutcome', 'reason', 'updatedAt'] as const;
export const ATTEMPT_COLUMNS = [
  'contactId',
  'attempt',
  'uuid',
  'number',
  'outcome',
  'statuses',
  'unclassified',
  'details',
  'digits',
  'reason',
  'placedAt',
  'answeredAt',
  'endedAt',
  'duration',
  'price',
] as const;

/** CSV lines of contacts, header first; pulled lazily so memory stays flat. */
export async function* contactsCsv(contacts: AsyncIterable<ContactView>): AsyncIterable<string> {
  yield row([...CONTACT_COLUMNS]);
  for await (const c of contacts) {
    yield row([c.id, c.number, c.name, c.state, c.final, c.attempts, c.lastOutcome, c.reason, c.updatedAt]);
  }
}

/** CSV lines of attempts, header first. */
export async function* attemptsCsv(attempts: AsyncIterable<AttemptView>): AsyncIterable<string> {
  yield row([...ATTEMPT_COLUMNS]);
  for await (const a of attempts) {
    yield row([
      a.contactId,
      a.attempt,
      a.uuid,
      a.number,
      a.outcome,
      a.statuses,
      a.unclassified,
      a.details,
      a.digits,
      a.reason,
      a.placedAt,
      a.answeredAt,
      a.endedAt,
      a.duration,
      a.price,
    ]);
  }
}
