import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FINAL_STATES, type BroadcastRequestInput } from '@clarion/contracts';
import { ApiError, connect, requestBroadcast, restClient } from './client.js';
import { CliError, EXIT, importProblem } from './commands/context.js';
import { REPO_ROOT, startStack, type Stack } from './stack.js';
import { renderProgress, renderTable } from './render.js';
import type { ImportReport } from './commands/lists.js';
import type { Summary } from './commands/broadcast.js';

export const SAMPLE_CSV = join(REPO_ROOT, 'tools', 'clarion', 'examples', 'contacts-demo.csv');

export interface DemoOptions {
  csv: string;
  /** The file's text when the caller already read it (else `csv` is read). */
  csvText?: string;
  country: string;
  /** Import column mapping as the contacts service's `map.<field>` query parameters. */
  mapping?: Record<string, string>;
  cps: number;
  json: boolean;
  timeScale: number;
  /** Give up waiting after this long. */
  timeoutMs: number;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export type { ImportReport };

/** The part of the reporter's summary the demo and the progress line read. */
export type BroadcastSummary = Pick<Summary, 'id' | 'name' | 'status' | 'audience' | 'counts' | 'pending'>;

interface SimCall {
  uuid: string;
  to: string;
  event_url: string;
  outcome?: string;
}

export interface DemoSummary {
  ok: boolean;
  broadcastId: string;
  rows: number;
  audience: { accepted: number; invalid: number; duplicate: number; suppressed: number };
  /** The first invalid rows of the file, with the reason. */
  invalidRows: { row: number; reason: string }[];
  /** Accepted numbers that are possible but not known to be assigned. */
  flagged: number;
  final: Record<string, number>;
  pending: number;
  callsPlaced: number;
  firstAttemptCalls: number;
  contactsCalledTwiceForOneAttempt: number;
  maxCallsPerNumber: number;
  maxAttempts: number;
  durationMs: number;
  problems: string[];
}

/** Parse the attempt identity the dialer put in a call's event URL. */
export function attemptOf(eventUrl: string): { contactId: string; attempt: number } | undefined {
  try {
    const url = new URL(eventUrl);
    const contactId = url.searchParams.get('c');
    const attempt = Number(url.searchParams.get('a'));
    return contactId && attempt > 0 ? { contactId, attempt } : undefined;
  } catch {
    return undefined;
  }
}

/** Compare voice-sim's ground truth with what the broadcast should have produced. */
export function checkGroundTruth(calls: SimCall[], accepted: number, maxAttempts: number) {
  const perAttempt = new Map<string, number>();
  const perNumber = new Map<string, number>();
  const firstAttemptContacts = new Set<string>();
  for (const call of calls) {
    perNumber.set(call.to, (perNumber.get(call.to) ?? 0) + 1);
    const identity = attemptOf(call.event_url);
    if (!identity) continue;
    const key = `${identity.contactId}#${identity.attempt}`;
    perAttempt.set(key, (perAttempt.get(key) ?? 0) + 1);
    if (identity.attempt === 1) firstAttemptContacts.add(identity.contactId);
  }
  const doubled = [...perAttempt.values()].filter((n) => n > 1).length;
  const maxCallsPerNumber = Math.max(0, ...perNumber.values());
  const problems: string[] = [];
  if (firstAttemptContacts.size !== accepted) {
    problems.push(`voice-sim saw first attempts for ${firstAttemptContacts.size} contacts, expected ${accepted}`);
  }
  if (doubled > 0) problems.push(`${doubled} contact(s) called twice for the same attempt`);
  if (maxCallsPerNumber > maxAttempts) problems.push(`a number got ${maxCallsPerNumber} calls, the policy allows ${maxAttempts}`);
  return { firstAttemptCalls: firstAttemptContacts.size, doubled, maxCallsPerNumber, problems };
}

export const DEMO_MESSAGE =
  'Hello {{name}}. This is a Clarion test alert for {{Site}}. There is no emergency. This is only a test.';

/** How often a non-terminal gets a progress line. */
const PLAIN_PROGRESS_EVERY_MS = 3000;
/** How many invalid rows the summary names. */
const INVALID_ROWS_SHOWN = 10;

/** Run a whole broadcast on a private stack and report what happened. */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const started = Date.now();
  const csv = options.csvText ?? readFileSync(options.csv, 'utf8');
  const stateDir = mkdtempSync(join(tmpdir(), 'clarion-demo-'));
  const say = (line: string) => {
    if (!options.json) options.err.write(`${line}\n`);
  };
  say(`Starting NATS, voice-sim and the four services (state in ${stateDir}) ...`);
  let stack: Stack | undefined;
  try {
    stack = await startStack({ stateDir, accountCps: options.cps, timeScale: options.timeScale, logLevel: 'warn' });
    const contacts = restClient(stack.url('contacts'), stack.secrets.apiToken);
    const reporter = restClient(stack.url('reporter'), stack.secrets.apiToken);

    const list = await contacts.post<{ id: string }>('/v1/lists', { name: `demo ${new Date().toISOString()}` });
    const query = new URLSearchParams({ defaultCountry: options.country, ...(options.mapping ?? {}) });
    let report: ImportReport;
    try {
      report = await contacts.post<ImportReport>(`/v1/lists/${list.id}/import?${query}`, csv, 'text/csv');
    } catch (error) {
      // A file the importer cannot read (no phone column, unknown header) is the user's to fix.
      if (error instanceof ApiError && error.status === 400) throw new CliError(EXIT.usage, `cannot import ${options.csv}: ${importProblem(error.body, error.message)}`);
      throw error;
    }
    say(
      `Imported ${options.csv}: ${report.rowsRead} rows, ${report.imported} contacts, ` +
        `${report.invalid.length} invalid, ${report.duplicate.length} duplicate, ${report.flagged ?? 0} flagged`,
    );
    if (report.imported === 0) {
      throw new CliError(EXIT.failed, `no contacts in ${options.csv} (${report.rowsRead} rows, ${report.invalid.length} invalid, ${report.duplicate.length} duplicate)`);
    }

    const maxAttempts = 2;
    const request: BroadcastRequestInput = {
      name: 'Clarion demo',
      idempotencyKey: `demo-${list.id}`,
      message: { text: DEMO_MESSAGE, language: 'en-US' },
      audience: { listIds: [list.id], defaultCountry: options.country },
      acknowledgement: { prompt: 'Press 1 to confirm you heard this message.' },
      retry: { maxAttempts, delaySeconds: 1, on: ['busy', 'no_answer', 'failed'] },
      pacing: { callsPerSecond: options.cps },
      priority: 'normal',
    };
    const nc = await connect(stack.natsUrl);
    const reply = await requestBroadcast(nc, request);
    await nc.close();
    if (!reply.ok) throw new Error(`broadcast request refused: ${reply.error.message}`);
    // The broadcast's own counts come on top of the import's (numbers already dropped there are not counted again).
    const c = reply.counts;
    say(
      `Broadcast ${reply.broadcastId}: ${c.accepted} contacts to call ` +
        `(${c.invalid} more invalid, ${c.duplicate} more duplicates, ${c.suppressed} suppressed)`,
    );

    let summary: BroadcastSummary | undefined;
    const deadline = Date.now() + options.timeoutMs;
    const tty = (options.err as { isTTY?: boolean }).isTTY === true;
    let lastPlain = 0;
    while (Date.now() < deadline) {
      summary = await reporter.get<BroadcastSummary>(`/v1/broadcasts/${reply.broadcastId}`).catch(() => undefined);
      const over = summary?.status === 'completed';
      if (summary && !options.json) {
        if (tty) options.err.write(`\r${renderProgress(summary)}\x1b[K`);
        else if (over || Date.now() - lastPlain >= PLAIN_PROGRESS_EVERY_MS) {
          // Not a terminal (a log, a CI job): a plain line now and then, no cursor codes.
          options.err.write(`${renderProgress(summary)}\n`);
          lastPlain = Date.now();
        }
      }
      if (over) break;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    if (!options.json && tty) options.err.write('\n');

    const simCalls = (await (await fetch(`${stack.url('voice-sim')}/_sim/calls`)).json()) as { calls: SimCall[] };
    const truth = checkGroundTruth(simCalls.calls, reply.counts.accepted, maxAttempts);
    const final: Record<string, number> = {};
    for (const state of FINAL_STATES) {
      const n = summary?.counts[state] ?? 0;
      if (n > 0) final[state] = n;
    }
    const problems = [...truth.problems];
    if (reply.counts.accepted === 0) problems.push(`no contacts to call in ${options.csv}`);
    if (summary?.status !== 'completed') problems.push(`broadcast not completed (status ${summary?.status ?? 'unknown'})`);
    const audienceTotal = reply.counts.accepted + reply.counts.duplicate + reply.counts.suppressed;
    const finalTotal = Object.values(final).reduce((a, b) => a + b, 0);
    if (summary?.status === 'completed' && finalTotal !== audienceTotal) {
      problems.push(`final states add up to ${finalTotal}, audience is ${audienceTotal}`);
    }
    const audience = {
      accepted: reply.counts.accepted,
      invalid: report.invalid.length + reply.counts.invalid,
      duplicate: report.duplicate.length + reply.counts.duplicate,
      suppressed: reply.counts.suppressed,
    };
    const rows = report.rowsRead;
    if (audience.accepted + audience.invalid + audience.duplicate + audience.suppressed !== rows) {
      problems.push(`accepted + invalid + duplicate + suppressed != ${rows} rows`);
    }
    const result: DemoSummary = {
      ok: problems.length === 0,
      broadcastId: reply.broadcastId,
      rows,
      audience,
      invalidRows: report.invalid.slice(0, INVALID_ROWS_SHOWN),
      flagged: report.flagged ?? 0,
      final,
      pending: summary?.pending ?? audienceTotal,
      callsPlaced: simCalls.calls.length,
      firstAttemptCalls: truth.firstAttemptCalls,
      contactsCalledTwiceForOneAttempt: truth.doubled,
      maxCallsPerNumber: truth.maxCallsPerNumber,
      maxAttempts,
      durationMs: Date.now() - started,
      problems,
    };
    if (options.json) options.out.write(`${JSON.stringify(result)}\n`);
    else options.out.write(renderTable(result));
    return result;
  } finally {
    await stack?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}
