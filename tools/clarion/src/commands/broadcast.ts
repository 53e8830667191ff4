import { readFileSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse as parseYaml } from 'yaml';
import { randomUUID } from 'node:crypto';
import { BroadcastRequest, FINAL_STATES, type BroadcastSummary, type ControlAction } from '@clarion/contracts';
import { normaliseNumber } from '@clarion/phone';
import { connect, controlBroadcast, NatsReplyTimeout, requestBroadcast } from '../client.js';
import { api, bar, CliError, countryOption, EXIT, need, nonNegative, numeric, parse, positive, printJson, resolveConnection, table, toCliError, type Connection, type ExitCode, type Io } from './context.js';

/** Fields of the summary older reporters do not send: the CLI reads them only when present. */
type NewerSummaryFields = 'name' | 'priority' | 'reason' | 'lifecycle' | 'acknowledgement' | 'retries' | 'etaSeconds';

/** The reporter's broadcast summary (GET /v1/broadcasts/:id), read leniently: any status is shown as it comes. */
export type Summary = Omit<BroadcastSummary, NewerSummaryFields | 'status'> & Partial<Pick<BroadcastSummary, NewerSummaryFields>> & { status: string };

const FINAL = new Set<string>(FINAL_STATES);
const ORDER = ['acknowledged', 'answered', 'voicemail', 'busy', 'no_answer', 'rejected', 'failed', 'invalid_number', 'unknown', 'suppressed', 'duplicate', 'expired', 'cancelled', 'outside_window'];

/** Per-state rows: final outcomes in a fixed order, then the in-flight states. */
function stateRows(counts: Record<string, number>): [string, number][] {
  const known = ORDER.filter((s) => (counts[s] ?? 0) > 0).map((s): [string, number] => [s, counts[s] ?? 0]);
  const rest = Object.entries(counts).filter(([s, n]) => !ORDER.includes(s) && n > 0).sort(([a], [b]) => a.localeCompare(b));
  return [...known, ...rest];
}

const two = (n: number) => String(n).padStart(2, '0');

/** The short name of the operator's time zone at `t` (`UTC`, `GMT+1`, `BST`), as the dashboard shows it. */
function zoneName(t: Date): string {
  return new Intl.DateTimeFormat('en-GB', { timeZoneName: 'short' }).formatToParts(t).find((p) => p.type === 'timeZoneName')?.value ?? '';
}

/** A time as the operator's local clock with its zone: `HH:MM:SS GMT+1`, with the date when it is not today. */
export function clockTime(iso: string, now = new Date()): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const time = `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())} ${zoneName(t)}`.trimEnd();
  return t.toDateString() === now.toDateString() ? time : `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())} ${time}`;
}

/** A full local date and time with its zone (`2026-12-03 15:24:25 GMT+1`); JSON output keeps ISO UTC. */
export function localTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())} ${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())} ${zoneName(t)}`.trimEnd();
}

/** Why nobody more is called although contacts still wait: the broadcast was cancelled or expired. */
function closedBecause(s: Summary): 'cancelled' | 'expired' | undefined {
  if (s.status === 'cancelled') return 'cancelled';
  if ((s.lifecycle ?? []).some((e) => e.type === 'expired')) return 'expired';
  return undefined;
}

/**
 * `waiting for N retries, next at HH:MM:SS` (`due now` once that time passed), or, for a cancelled or
 * expired broadcast, `N contacts waiting to be closed as cancelled` (no more calls are placed; the dialer
 * closes each when its retry comes due). Undefined when no contact waits for a retry.
 */
export function retryNote(s: Summary, now = new Date()): string | undefined {
  const waiting = s.retries?.waiting ?? s.counts.waiting_retry ?? 0;
  if (waiting <= 0) return undefined;
  const closed = closedBecause(s);
  const contacts = `${waiting} ${waiting === 1 ? 'contact' : 'contacts'}`;
  if (closed === 'cancelled') return `${contacts} waiting to be closed as cancelled`;
  if (closed === 'expired') return `${contacts} waiting to be closed (the broadcast expired)`;
  const next = s.retries?.nextAt;
  const due = next ? (Date.parse(next) <= now.getTime() ? ', due now' : `, next at ${clockTime(next, now)}`) : '';
  return `waiting for ${waiting} ${waiting === 1 ? 'retry' : 'retries'}${due}`;
}

/** The status, with the reason it was paused, cancelled or halted. */
const statusText = (s: Summary) => `${s.status}${s.reason ? ` (${s.reason})` : ''}`;

/** The closing report of one broadcast. */
export function renderSummary(s: Summary, now = new Date()): string {
  const audience = s.audience ?? s.final + s.pending;
  const pct = (n: number | null) => (n === null ? '—' : `${Math.round(n * 1000) / 10}%`);
  const retries = retryNote(s, now);
  const lines = [
    `Broadcast ${s.id}${s.name ? ` "${s.name}"` : ''}: ${statusText(s)}`,
    '',
    table([
      ['audience', audience],
      ['final', `${s.final}${s.pending > 0 ? `  (${s.pending} not final yet)` : ''}`],
      ...(retries ? ([[closedBecause(s) ? 'closing' : 'retries', retries]] as [string, string][]) : []),
      ['calls placed', s.attempts],
      ['answer rate', pct(s.rates.answerRate)],
      // A broadcast that asks nobody to confirm has no confirmation rate, rather than 0 %.
      ['confirmation rate', s.acknowledgement === false ? 'n/a (nobody was asked to confirm)' : pct(s.rates.confirmationRate)],
      ['calls per minute', s.rates.callsPerMinute ?? '—'],
      ['started', localTime(s.timings.firstCallAt)],
      ...(s.done ? [] : ([['expected end', localTime(s.eta)]] as [string, string][])),
      ['completed', localTime(s.timings.completedAt)],
    ]),
    '',
    '  state                 contacts',
    ...stateRows(s.counts).map(([state, n]) => `  ${state.padEnd(20)}${String(n).padStart(8)}${FINAL.has(state) ? '' : '  (in progress)'}`),
    ...((s.lifecycle ?? []).length > 0
      ? ['', '  history', ...(s.lifecycle ?? []).map((e) => `  ${localTime(e.at)}  ${e.type.padEnd(9)}${e.reason ? `  ${e.reason}` : ''}`)]
      : []),
    '',
  ];
  return `${lines.join('\n')}\n`;
}

/** The live block: one bar per state, rewritten in place on a terminal. */
export function renderLive(s: Summary, now = new Date()): string[] {
  const audience = Math.max(1, s.audience ?? s.final + s.pending);
  if (s.audience === null && s.final === 0) return [`${s.id}  ${s.status}  waiting for the audience…`];
  const retries = retryNote(s, now);
  return [
    `${s.id}  ${statusText(s)}  ${s.final}/${s.audience ?? '?'} final  ${s.attempts} calls${retries ? `  ${retries}` : ''}${s.eta && !s.done ? `  eta ${clockTime(s.eta, now)}` : ''}`,
    ...stateRows(s.counts).map(([state, n]) => `  ${state.padEnd(16)} ${bar(n, audience, 30)} ${n}`),
  ];
}

/** Without a terminal, an unchanged progress line is repeated this often. */
const PLAIN_REPEAT_MS = 60_000;

const isOver = (s: Summary) => s.done || s.status === 'halted' || (s.status === 'cancelled' && s.pending === 0);

/** How long `watch` keeps asking for an id the reporter does not know: a broadcast just sent may not have reached it yet. */
export const WATCH_UNKNOWN_GRACE_MS = 3_000;

/** Follow a broadcast until every contact is final (or it halts), drawing bars, then the summary. */
export async function watch(
  conn: Connection,
  id: string,
  io: Io,
  options: { json: boolean; timeoutMs?: number; intervalMs?: number; unknownGraceMs?: number },
): Promise<ExitCode> {
  // Ctrl-C: say that only the watching stopped, not the broadcast, and exit 130 as a shell would.
  let onInterrupt: (() => void) | undefined;
  const interrupted = new Promise<ExitCode>((resolve) => {
    onInterrupt = () => {
      io.err.write(`\nstopped watching; broadcast ${id} keeps running (clarion cancel ${id} to stop it)\n`);
      resolve(EXIT.interrupted);
    };
    process.once('SIGINT', onInterrupt);
  });
  try {
    return await Promise.race([follow(conn, id, io, options), interrupted]);
  } finally {
    if (onInterrupt) process.removeListener('SIGINT', onInterrupt);
  }
}

async function follow(
  conn: Connection,
  id: string,
  io: Io,
  options: { json: boolean; timeoutMs?: number; intervalMs?: number; unknownGraceMs?: number },
): Promise<ExitCode> {
  const reporter = api(conn, 'reporter');
  const started = Date.now();
  const deadline = options.timeoutMs === undefined ? Infinity : started + options.timeoutMs;
  const unknownUntil = Math.min(deadline, started + (options.unknownGraceMs ?? WATCH_UNKNOWN_GRACE_MS));
  const tty = io.err.isTTY === true;
  let drawn = 0;
  let lastLine = '';
  let lastPrinted = 0;
  let summary: Summary | undefined;
  for (;;) {
    try {
      summary = await reporter.get<Summary>(`/v1/broadcasts/${encodeURIComponent(id)}`);
    } catch (error) {
      // The reporter learns of a broadcast from its first event: a fresh id may 404 briefly, an unknown one for ever.
      if (!(error instanceof CliError && error.exitCode === EXIT.notFound && summary === undefined)) throw error;
      if (Date.now() >= unknownUntil) throw error;
    }
    const now = new Date();
    if (summary && !options.json) {
      const block = renderLive(summary, now);
      if (tty) {
        // Back to the top of the last block and clear below: the number of states can shrink.
        io.err.write(`${drawn > 0 ? `\x1b[${drawn}A` : ''}\r\x1b[J${block.join('\n')}\n`);
        drawn = block.length;
      } else {
        // Not a terminal: one plain line whenever the status, the final count or the retries waiting
        // move, and again now and then, so a long retry delay never looks like a hang.
        const key = `${statusText(summary)}/${summary.final}/${retryNote(summary, now) ?? ''}`;
        if (key !== lastLine || Date.now() - lastPrinted >= PLAIN_REPEAT_MS) {
          io.err.write(`${block[0]}\n`);
          lastLine = key;
          lastPrinted = Date.now();
        }
      }
    }
    if (summary && isOver(summary)) break;
    if (Date.now() > deadline) {
      if (!options.json) io.err.write(`clarion: gave up waiting for ${id}; it is still ${summary?.status ?? 'unknown'}\n`);
      if (options.json && summary) printJson(io, summary);
      return EXIT.failed;
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
  }
  if (options.json) printJson(io, summary);
  else io.out.write(`\n${renderSummary(summary)}`);
  return summary.status === 'halted' ? EXIT.failed : EXIT.ok;
}

/** Parse a JSON or YAML request file. */
function readRequestFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CliError(EXIT.usage, `cannot read ${path}`);
  }
  try {
    const value: unknown = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('the top level must be an object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new CliError(EXIT.usage, `${path} is not a valid request: ${(error as Error).message}`);
  }
}

const asObject = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** `clarion send`: a broadcast from flags and/or a JSON/YAML file (flags win), then optionally watch it. */
export async function sendCommand(args: string[], io: Io): Promise<ExitCode> {
  const { values } = parse(
    args,
    {
      file: { type: 'string', short: 'f' },
      name: { type: 'string' },
      text: { type: 'string' },
      'audio-url': { type: 'string' },
      language: { type: 'string' },
      repeat: { type: 'string' },
      list: { type: 'string', multiple: true },
      number: { type: 'string', multiple: true },
      country: { type: 'string' },
      from: { type: 'string' },
      ack: { type: 'string' },
      'max-attempts': { type: 'string' },
      'retry-delay': { type: 'string' },
      cps: { type: 'string' },
      priority: { type: 'string' },
      'idempotency-key': { type: 'string' },
      watch: { type: 'boolean', default: false },
      timeout: { type: 'string' },
    },
    false,
  );
  const request = values.file ? readRequestFile(values.file) : {};
  const message = asObject(request.message);
  const audience = asObject(request.audience);
  const retry = asObject(request.retry);
  const pacing = asObject(request.pacing);
  if (values.name !== undefined) request.name = values.name;
  if (values['idempotency-key'] !== undefined) request.idempotencyKey = values['idempotency-key'];
  if (values.text !== undefined) message.text = values.text;
  if (values['audio-url'] !== undefined) message.audioUrl = values['audio-url'];
  if (values.language !== undefined) message.language = values.language;
  if (values.repeat !== undefined) message.repeat = numeric(values.repeat, '--repeat');
  if (values.list) audience.listIds = [...((audience.listIds as unknown[]) ?? []), ...values.list];
  if (values.number) audience.numbers = [...((audience.numbers as unknown[]) ?? []), ...values.number];
  if (values.country !== undefined) audience.defaultCountry = countryOption(values.country);
  if (values.from !== undefined) request.from = values.from;
  if (values.ack !== undefined) request.acknowledgement = { ...asObject(request.acknowledgement), prompt: values.ack };
  if (values['max-attempts'] !== undefined) retry.maxAttempts = numeric(values['max-attempts'], '--max-attempts');
  if (values['retry-delay'] !== undefined) retry.delaySeconds = nonNegative(values['retry-delay'], '--retry-delay');
  if (values.cps !== undefined) pacing.callsPerSecond = positive(values.cps, '--cps');
  if (values.priority !== undefined) request.priority = values.priority;
  request.message = message;
  request.audience = audience;
  if (Object.keys(retry).length > 0) request.retry = retry;
  if (Object.keys(pacing).length > 0) request.pacing = pacing;
  const timeoutMs = values.timeout === undefined ? undefined : (positive(values.timeout, '--timeout') ?? 0) * 1000;

  // Validate here too so a mistake is named before anything is sent (contacts checks again).
  const checked = BroadcastRequest.safeParse(request);
  if (!checked.success) {
    const details = checked.error.issues.map((i) => ({ path: i.path.length > 0 ? i.path.join('.') : '(request)', message: i.message }));
    const hint = details.some((d) => d.path === 'name' || d.path === 'message' || d.path === 'audience')
      ? '\n(at least --name, --text and --list or --number; see `clarion help`)'
      : '';
    if (values.json) printJson(io, { ok: false, error: { code: 'invalid_request', message: 'invalid broadcast request', details } });
    else io.err.write(`clarion: invalid broadcast request:\n${details.map((d) => `  ${d.path}: ${d.message}`).join('\n')}${hint}\n`);
    return EXIT.usage;
  }

  // Inline numbers alone, none of them callable: refuse before anything is created (contacts reads them the same way).
  const { audience: parsedAudience } = checked.data;
  if (parsedAudience.listIds.length === 0) {
    const invalid = parsedAudience.numbers.flatMap((item) => {
      // As contacts reads it: an object with its own country, or a bare string.
      const detail = typeof item === 'object' && item !== null ? item : undefined;
      const input = detail ? detail.number : typeof item === 'string' ? item : '';
      const result = normaliseNumber(input, { country: detail?.country, defaultCountry: parsedAudience.defaultCountry, timezone: detail?.timezone });
      return result.ok ? [] : [{ input, reason: result.reason }];
    });
    if (invalid.length > 0 && invalid.length === parsedAudience.numbers.length) {
      const message = `nobody would be called: ${invalid.length === 1 ? 'the only number is' : `all ${invalid.length} numbers are`} invalid; no broadcast was created`;
      if (values.json) printJson(io, { ok: false, error: { code: 'no_audience', message }, invalid });
      else io.err.write(`clarion: ${message}\n${invalidLines(invalid, invalid.length)}`);
      return EXIT.failed;
    }
  }
  // A key makes a retry after a lost reply safe: the same key returns the same broadcast.
  if (request.idempotencyKey === undefined) request.idempotencyKey = `cli-${randomUUID()}`;

  const conn = resolveConnection(values, io);
  const natsUrl = need(conn, 'natsUrl');
  let reply;
  try {
    const nc = await connect(natsUrl);
    try {
      reply = await requestBroadcast(nc, request);
    } finally {
      await nc.close();
    }
  } catch (error) {
    if (error instanceof NatsReplyTimeout) {
      throw new CliError(
        EXIT.failed,
        `${error.message} from the contacts service (NATS at ${natsUrl}); a large audience can take longer to enqueue. ` +
          `The broadcast may still be created: check \`clarion report\`, or send again with --idempotency-key ${String(request.idempotencyKey)} (it returns the same broadcast, never a second one)`,
      );
    }
    throw toCliError(error, `NATS at ${natsUrl}`);
  }
  if (!reply.ok) {
    if (values.json) printJson(io, reply);
    else {
      const details = (reply.error.details ?? []).map((d) => `  ${d.path}: ${d.message}`).join('\n');
      io.err.write(`clarion: broadcast refused: ${reply.error.message}${details ? `\n${details}` : ''}\n`);
    }
    return reply.error.code === 'invalid_request' ? EXIT.usage : reply.error.code === 'unknown_list' ? EXIT.notFound : EXIT.failed;
  }
  const nobody = reply.counts.accepted === 0;
  if (!values.json || !values.watch || nobody) {
    if (values.json) printJson(io, reply);
    else {
      io.out.write(
        `Broadcast ${reply.broadcastId} ${reply.created ? 'created' : 'already existed (same idempotency key)'}\n` +
          `${table([
            ['accepted', reply.counts.accepted],
            ['invalid', reply.counts.invalid],
            ['duplicate', reply.counts.duplicate],
            ['suppressed', reply.counts.suppressed],
          ])}\n`,
      );
      io.out.write(invalidLines(reply.invalid ?? [], reply.counts.invalid));
      if (nobody) io.err.write(`clarion: nobody will be called: no contact of broadcast ${reply.broadcastId} was accepted\n`);
      else if (!values.watch) io.out.write(`Follow it with: clarion watch ${reply.broadcastId}\n`);
    }
  }
  // Numbers left out are an input problem the caller must see, as for \`import\`: exit 1 even though the rest is called.
  const leftOut = nobody || reply.counts.invalid > 0 ? EXIT.failed : EXIT.ok;
  if (!values.watch || nobody) return leftOut;
  // Just created: the reporter may take a moment to hear of it, so allow it longer than `watch ID` does.
  const watched = await watch(conn, reply.broadcastId, io, { json: values.json, unknownGraceMs: 60_000, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  return watched === EXIT.ok ? leftOut : watched;
}

/** Invalid inline numbers, one a line (`  020 7946 0002: impossible number for US …`), the first ten. */
function invalidLines(invalid: { input: string; reason: string }[], total: number): string {
  const shown = invalid.slice(0, 10).map((i) => `  ${i.input}: ${i.reason}\n`);
  if (total > shown.length) shown.push(`  … and ${total - shown.length} more invalid (use --json for those listed)\n`);
  return shown.join('');
}

/** `clarion watch ID [--timeout S]`. */
export async function watchCommand(args: string[], io: Io): Promise<ExitCode> {
  const { values, positionals } = parse(args, { timeout: { type: 'string' } });
  const id = positionals[0];
  if (!id) throw new CliError(EXIT.usage, 'usage: clarion watch <broadcast id>');
  const timeout = positive(values.timeout, '--timeout');
  return watch(resolveConnection(values, io), id, io, { json: values.json, ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}) });
}

/** `clarion pause|resume|cancel ID [--reason R]` over `broadcast.control`. */
export async function controlCommand(action: ControlAction, args: string[], io: Io): Promise<ExitCode> {
  const { values, positionals } = parse(args, { reason: { type: 'string' } });
  const id = positionals[0];
  if (!id) throw new CliError(EXIT.usage, `usage: clarion ${action} <broadcast id>`);
  const conn = resolveConnection(values, io);
  const natsUrl = need(conn, 'natsUrl');
  // Completion is known to the reporter only: a finished broadcast is not relabelled paused or
  // cancelled (the REST API refuses the same). Without a reachable reporter the request goes ahead.
  if (conn.reporterUrl && conn.apiToken) {
    const summary = await api(conn, 'reporter').get<Summary>(`/v1/broadcasts/${encodeURIComponent(id)}`).catch(() => undefined);
    if (summary?.status === 'completed') {
      const message = `broadcast ${id} is completed: every contact has its final state, there is nothing to ${action}`;
      if (values.json) printJson(io, { ok: false, error: { code: 'already_completed', message } });
      else io.err.write(`clarion: ${action} refused: ${message}\n`);
      return EXIT.failed;
    }
  }
  let reply: { ok: boolean; state?: unknown; error?: { code?: string; message: string } };
  try {
    const nc = await connect(natsUrl);
    try {
      reply = await controlBroadcast(nc, id, action, values.reason);
    } finally {
      await nc.close();
    }
  } catch (error) {
    if (error instanceof NatsReplyTimeout) {
      throw new CliError(EXIT.failed, `${error.message} from the contacts service (NATS at ${natsUrl}); check with \`clarion report ${id}\` whether the ${action} took effect`);
    }
    throw toCliError(error, `NATS at ${natsUrl}`);
  }
  if (values.json) printJson(io, reply);
  if (!reply.ok) {
    if (!values.json) io.err.write(`clarion: ${action} refused: ${reply.error?.message ?? 'unknown error'}\n`);
    return reply.error?.code === 'not_found' ? EXIT.notFound : reply.error?.code === 'invalid_request' ? EXIT.usage : EXIT.failed;
  }
  const past = { pause: 'Paused', resume: 'Resumed', cancel: 'Cancelled' } as const;
  if (!values.json) io.out.write(`${past[action]} ${id}\n`);
  return EXIT.ok;
}

/** `clarion report [ID]`: one broadcast's summary, or the list of broadcasts. */
export async function reportCommand(args: string[], io: Io): Promise<ExitCode> {
  const { values, positionals } = parse(args, { limit: { type: 'string', default: '20' } });
  const reporter = api(resolveConnection(values, io), 'reporter');
  const id = positionals[0];
  if (id) {
    const summary = await reporter.get<Summary>(`/v1/broadcasts/${encodeURIComponent(id)}`);
    if (values.json) printJson(io, summary);
    else io.out.write(renderSummary(summary));
    return EXIT.ok;
  }
  const limit = positive(values.limit, '--limit') ?? 20;
  const page = await reporter.get<{ items: Summary[] }>(`/v1/broadcasts?limit=${Math.floor(limit)}`);
  if (values.json) printJson(io, page);
  else if (page.items.length === 0) io.out.write('No broadcasts yet. Send one with: clarion send --name … --text … --number …\n');
  else {
    const w = Math.max(2, ...page.items.map((b) => b.id.length));
    io.out.write(`${'ID'.padEnd(w)}  ${'STATUS'.padEnd(10)} ${'FINAL'.padStart(11)}  NAME\n`);
    for (const b of page.items) io.out.write(`${b.id.padEnd(w)}  ${b.status.padEnd(10)} ${`${b.final}/${b.audience ?? '?'}`.padStart(11)}  ${b.name ?? ''}\n`);
  }
  return EXIT.ok;
}

/** `clarion export ID [--type contacts|attempts] [--out FILE]`: the reporter's CSV, to a file or stdout. */
export async function exportCommand(args: string[], io: Io): Promise<ExitCode> {
  const { values, positionals } = parse(args, { type: { type: 'string', default: 'contacts' }, out: { type: 'string', short: 'o' } });
  const id = positionals[0];
  if (!id) throw new CliError(EXIT.usage, 'usage: clarion export <broadcast id> [--type contacts|attempts] [--out FILE]');
  if (values.type !== 'contacts' && values.type !== 'attempts') throw new CliError(EXIT.usage, '--type must be contacts or attempts');
  const conn = resolveConnection(values, io);
  const reporter = api(conn, 'reporter');
  let response: Response;
  try {
    response = await fetch(`${reporter.base}/v1/broadcasts/${encodeURIComponent(id)}/export.csv?type=${values.type}`, {
      headers: { authorization: `Bearer ${need(conn, 'apiToken')}` },
    });
  } catch (error) {
    throw toCliError(error, `reporter at ${reporter.base}`);
  }
  if (!response.ok || !response.body) {
    const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } };
    throw new CliError(response.status === 404 ? EXIT.notFound : response.status === 401 ? EXIT.unavailable : EXIT.failed, body.error?.message ?? `export failed (HTTP ${response.status})`);
  }
  const source = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  if (values.out) {
    await pipeline(source, createWriteStream(values.out));
    if (!values.json) io.err.write(`Wrote ${values.type} of ${id} to ${values.out}\n`);
    else printJson(io, { ok: true, file: values.out });
  } else {
    for await (const chunk of source) io.out.write(chunk as Buffer);
  }
  return EXIT.ok;
}
