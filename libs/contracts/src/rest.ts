/**
 * Shapes of the REST responses the CLI reads: one definition for the service that writes them and the
 * client that reads them. (NATS messages are zod schemas in messages.ts; these are plain types.)
 */

/** A broadcast's status as the reporter derives it from lifecycle events and contact finals. */
export type BroadcastStatus = 'created' | 'running' | 'paused' | 'cancelled' | 'halted' | 'completed';

/** When the first and the last of the retries now waiting are due (ISO), null when none waits. */
export interface RetryWindow {
  nextAt: string | null;
  lastAt: string | null;
}

/** The reporter's summary of one broadcast (GET /v1/broadcasts/:id, its SSE stream and lists). */
export interface BroadcastSummary {
  id: string;
  name: string | null;
  priority: string | null;
  status: BroadcastStatus;
  /** Why it was cancelled or halted, or, while paused, why it was paused. */
  reason: string | null;
  /** Pauses, resumes, cancels, halts and expiries, oldest first, each with its reason. */
  lifecycle: { at: string; type: string; reason: string | null }[];
  /** Whether people are asked to confirm with a key (null: not known); without it there is no confirmation rate. */
  acknowledgement: boolean | null;
  audience: number | null;
  counts: Record<string, number>;
  pending: number;
  final: number;
  done: boolean;
  attempts: number;
  timings: { createdAt: string | null; firstCallAt: string | null; lastCallAt: string | null; completedAt: string | null };
  rates: { callsPerMinute: number | null; answerRate: number | null; confirmationRate: number | null };
  /** Contacts waiting out a retry delay, and when the first and the last of those retries are due. */
  retries: RetryWindow & { waiting: number };
  /** When every contact should be final: from the call rate, and never before the last scheduled retry is due. */
  eta: string | null;
  etaSeconds: number | null;
}

/** The counters and findings of an import (the contacts service stores them as the import job). */
export interface ImportData {
  listId: string;
  status: 'running' | 'completed' | 'failed';
  mode: 'add' | 'upsert' | 'replace';
  rowsRead: number;
  imported: number;
  updated: number;
  unchanged: number;
  removed: number;
  flagged: number;
  invalidCount: number;
  duplicateCount: number;
  /** Rows whose number had an extension ("ext 9", "x12"): imported with the main number, the extension not dialled. */
  extensionDroppedCount: number;
  /** Rows are file lines for CSV (header = line 1; a record spanning lines has its first line), array positions from 1 for JSON. */
  invalid: { row: number; reason: string }[];
  duplicate: { row: number; of: number }[];
  extensionDropped: { row: number; extension: string }[];
  startedAt: string;
  finishedAt?: string;
  error?: string;
}

/** The import report returned by POST /v1/lists/:id/import and GET /v1/imports/:jobId. */
export type ImportReport = ImportData & { jobId: string };
