import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { api, bar, CliError, columnMapping, countryOption, EXIT, importProblem, MAP_OPTIONS, parse, printJson, resolveConnection, table, toCliError, type ExitCode, type Io } from './context.js';
import type { ImportReport as SharedImportReport } from '@clarion/contracts';

interface ListView {
  id: string;
  name: string;
  createdAt: string;
  counts?: { contacts: number; flagged: number };
}

/** `clarion lists create NAME [--id ID]` and `clarion lists list`. */
export async function listsCommand(args: string[], io: Io): Promise<ExitCode> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, { id: { type: 'string' } });
  const contacts = api(resolveConnection(values, io), 'contacts');
  if (sub === 'create') {
    const name = positionals.join(' ').trim();
    if (!name) throw new CliError(EXIT.usage, 'give the list a name: clarion lists create "River Street residents"');
    const list = await contacts.post<ListView>('/v1/lists', { name, ...(values.id ? { id: values.id } : {}) });
    if (values.json) printJson(io, list);
    else io.out.write(`Created list ${list.id} "${list.name}"\n`);
    return EXIT.ok;
  }
  if (sub === 'list' || sub === undefined) {
    const { lists } = await contacts.get<{ lists: ListView[] }>('/v1/lists');
    const detailed = await Promise.all(lists.map((l) => contacts.get<ListView>(`/v1/lists/${encodeURIComponent(l.id)}`)));
    if (values.json) {
      printJson(io, { lists: detailed });
      return EXIT.ok;
    }
    if (detailed.length === 0) {
      io.out.write('No lists yet. Create one with: clarion lists create "My list"\n');
      return EXIT.ok;
    }
    const idWidth = Math.max(2, ...detailed.map((l) => l.id.length));
    io.out.write(`${'ID'.padEnd(idWidth)}  ${'CONTACTS'.padStart(8)}  NAME\n`);
    for (const l of detailed) io.out.write(`${l.id.padEnd(idWidth)}  ${String(l.counts?.contacts ?? 0).padStart(8)}  ${l.name}\n`);
    return EXIT.ok;
  }
  throw new CliError(EXIT.usage, `unknown lists command "${sub}" (create, list)`);
}

/** Fields of the import report older contacts services do not send: the CLI reads them only when present. */
type NewerImportFields = 'extensionDroppedCount' | 'extensionDropped';

/** The contacts service's import report (POST /v1/lists/:id/import, GET /v1/imports/:jobId), read leniently. */
export type ImportReport = Omit<SharedImportReport, NewerImportFields> & Partial<Pick<SharedImportReport, NewerImportFields>>;

const MODES = ['add', 'upsert', 'replace'];

/** `clarion import LIST FILE [--country CC] [--mode add|upsert|replace]`: upload with a progress bar, then the report. */
export async function importCommand(args: string[], io: Io): Promise<ExitCode> {
  const { values, positionals } = parse(args, { country: { type: 'string' }, mode: { type: 'string', default: 'add' }, ...MAP_OPTIONS });
  const [listId, file] = positionals;
  if (!listId || !file) throw new CliError(EXIT.usage, 'usage: clarion import <list id> <file.csv|file.json>');
  if (!MODES.includes(values.mode)) throw new CliError(EXIT.usage, `--mode must be one of ${MODES.join(', ')}`);
  const country = countryOption(values.country);
  const mapping = columnMapping(values);
  let size: number;
  try {
    size = statSync(file).size;
  } catch (error) {
    throw new CliError(EXIT.usage, `cannot read ${file}: ${(error as Error).message}`);
  }
  const conn = resolveConnection(values, io);
  const contacts = api(conn, 'contacts');
  await contacts.get(`/v1/lists/${encodeURIComponent(listId)}`);

  // A bar redrawn in place on a terminal; elsewhere (a log, a pipe) one line before and one after.
  const showProgress = !values.json && io.err.isTTY === true;
  if (!values.json && !showProgress) io.err.write(`Uploading ${basename(file)} (${formatBytes(size)}) ...\n`);
  let sent = 0;
  const draw = () => {
    if (showProgress) io.err.write(`\r${bar(sent, size)} ${Math.round((sent / Math.max(size, 1)) * 100)}%  ${basename(file)} ${formatBytes(sent)}/${formatBytes(size)}\x1b[K`);
  };
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length;
      draw();
      done(null, chunk);
    },
  });
  const query = new URLSearchParams({ mode: values.mode });
  if (country) query.set('defaultCountry', country);
  for (const [key, header] of Object.entries(mapping)) query.set(key, header);
  const type = file.toLowerCase().endsWith('.json') ? 'application/json' : file.toLowerCase().endsWith('.tsv') ? 'text/tab-separated-values' : 'text/csv';
  draw();
  let report: ImportReport;
  try {
    const response = await fetch(`${contacts.base}/v1/lists/${encodeURIComponent(listId)}/import?${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${conn.apiToken}`, 'content-type': type, 'content-length': String(size) },
      body: Readable.toWeb(createReadStream(file).pipe(counter)) as ReadableStream<Uint8Array>,
      // Streaming request bodies need half-duplex in Node's fetch.
      duplex: 'half',
    } as RequestInit & { duplex: 'half' });
    const body = (await response.json().catch(() => ({}))) as unknown;
    if (!response.ok) {
      throw new CliError(
        response.status === 404 ? EXIT.notFound : response.status >= 500 ? EXIT.failed : EXIT.usage,
        `import refused: ${importProblem(body, `HTTP ${response.status}`)}`,
      );
    }
    report = body as ImportReport;
  } catch (error) {
    if (showProgress) io.err.write('\n');
    throw toCliError(error, `contacts at ${contacts.base}`);
  }
  if (showProgress) io.err.write('\n');
  else if (!values.json) io.err.write(`Uploaded ${basename(file)}: 100%\n`);
  if (values.json) {
    printJson(io, report);
  } else {
    io.out.write(renderImport(report, file));
  }
  // A file with no contacts (empty, header only) imports nothing: as `demo` does, that is a failure to see.
  if (report.status === 'completed' && report.rowsRead === 0) {
    io.err.write(`no contacts in ${basename(file)}: nothing imported\n`);
    return EXIT.failed;
  }
  // Rows left out (invalid) are an input problem the caller must see: exit 1 even though the rest was imported.
  return report.status === 'completed' && report.invalidCount === 0 ? EXIT.ok : EXIT.failed;
}

/** The import report as a short table plus the first problem rows ("row N" = line N of the file, header = line 1). */
export function renderImport(r: ImportReport, file: string): string {
  const lines = [
    `Import ${r.jobId} of ${file}: ${r.status}${r.error ? ` (${r.error})` : ''}`,
    table([
      ['rows read', r.rowsRead],
      ['imported', r.imported],
      ['updated', r.updated],
      ['unchanged', r.unchanged],
      ...(r.removed > 0 ? ([['removed', r.removed]] as [string, number][]) : []),
      ['invalid', r.invalidCount],
      ['duplicate', r.duplicateCount],
      ['flagged', `${r.flagged}${r.flagged > 0 ? '  (valid in form but not known to be in service; check them)' : ''}`],
      ...((r.extensionDroppedCount ?? 0) > 0
        ? ([['extension dropped', `${r.extensionDroppedCount}  (imported on the main number; the extension is not dialled)`]] as [string, string][])
        : []),
    ]),
  ];
  const shown = 10;
  if (r.invalid.length > 0) {
    lines.push('', '  invalid rows:');
    for (const i of r.invalid.slice(0, shown)) lines.push(`    row ${i.row}: ${i.reason}`);
    if (r.invalidCount > shown) lines.push(`    … and ${r.invalidCount - shown} more (use --json for all)`);
  }
  const extensions = r.extensionDropped ?? [];
  if (extensions.length > 0) {
    lines.push('', '  extensions not dialled:');
    for (const e of extensions.slice(0, shown)) lines.push(`    row ${e.row}: ext ${e.extension}`);
    if ((r.extensionDroppedCount ?? 0) > shown) lines.push(`    … and ${(r.extensionDroppedCount ?? 0) - shown} more (use --json for all)`);
  }
  if (r.duplicate.length > 0) {
    lines.push('', '  duplicate rows:');
    for (const d of r.duplicate.slice(0, shown)) lines.push(`    row ${d.row} repeats row ${d.of}`);
    if (r.duplicateCount > shown) lines.push(`    … and ${r.duplicateCount - shown} more`);
  }
  return `${lines.join('\n')}\n`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

interface Suppression {
  number: string;
  source?: string;
  reason?: string;
  createdAt?: string;
}

/** `clarion suppressions add NUMBER… [--reason R] [--country CC]`, `clarion suppressions list` and `clarion suppressions remove NUMBER…`. */
export async function suppressionsCommand(args: string[], io: Io): Promise<ExitCode> {
  const [sub, ...rest] = args;
  const { values, positionals } = parse(rest, { reason: { type: 'string' }, country: { type: 'string' } });
  const contacts = api(resolveConnection(values, io), 'contacts');
  if (sub === 'add') {
    if (positionals.length === 0) throw new CliError(EXIT.usage, 'usage: clarion suppressions add <number> [more numbers] [--reason TEXT]');
    const result = await contacts.post<{ added: number; existing: number; invalid: { input: string; reason: string }[] }>('/v1/suppressions', {
      numbers: positionals,
      ...(values.reason ? { reason: values.reason } : {}),
      ...(values.country !== undefined ? { country: countryOption(values.country) } : {}),
    });
    if (values.json) printJson(io, result);
    else {
      io.out.write(`Suppressed: ${result.added} added, ${result.existing} already suppressed, ${result.invalid.length} invalid\n`);
      for (const i of result.invalid) io.out.write(`  ${i.input}: ${i.reason}\n`);
    }
    return result.invalid.length > 0 ? EXIT.failed : EXIT.ok;
  }
  if (sub === 'list' || sub === undefined) {
    const all: Suppression[] = [];
    let cursor: string | null = null;
    do {
      const page: { suppressions: Suppression[]; nextCursor: string | null } = await contacts.get(
        `/v1/suppressions?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      all.push(...page.suppressions);
      cursor = page.nextCursor;
    } while (cursor);
    if (values.json) printJson(io, { suppressions: all });
    else if (all.length === 0) io.out.write('No suppressed numbers.\n');
    else for (const s of all) io.out.write(`${s.number.padEnd(17)} ${(s.source ?? '').padEnd(8)} ${s.reason ?? ''}\n`);
    return EXIT.ok;
  }
  if (sub === 'remove') {
    if (positionals.length === 0) throw new CliError(EXIT.usage, 'usage: clarion suppressions remove <number> [more numbers]');
    // Removing a do-not-call entry makes the number callable again: one by one, each reported.
    let missing = 0;
    for (const input of positionals) {
      try {
        await contacts.del(`/v1/suppressions/${encodeURIComponent(input)}`);
        if (!values.json) io.out.write(`Removed ${input} from the do-not-call list\n`);
      } catch (error) {
        if (!(error instanceof CliError && error.exitCode === EXIT.notFound)) throw error;
        missing += 1;
        io.err.write(`clarion: ${input} is not suppressed\n`);
      }
    }
    if (values.json) printJson(io, { removed: positionals.length - missing, notSuppressed: missing });
    return missing > 0 ? EXIT.notFound : EXIT.ok;
  }
  throw new CliError(EXIT.usage, `unknown suppressions command "${sub}" (add, list, remove)`);
}
