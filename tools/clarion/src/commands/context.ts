import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiError, NatsUnreachable, restClient } from '../client.js';
import { countryCode } from '@clarion/phone';
import { REPO_ROOT } from '../stack.js';

/** Exit codes every command uses (listed in `clarion help`). */
export const EXIT = {
  ok: 0,
  /** The operation ran but did not succeed: refused request, broadcast not completed, invalid rows. */
  failed: 1,
  usage: 2,
  /** Clarion cannot be reached or a prerequisite (nats-server, settings) is missing. */
  unavailable: 3,
  notFound: 4,
  /** Stopped with Ctrl-C (128 + SIGINT), as a shell reports it. */
  interrupted: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that ends the command with a given exit code and a one-line message. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** Where the command writes; injected so tests and the dispatcher share one shape. */
export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  cwd: string;
}

/** How to reach a running Clarion. */
export interface Connection {
  natsUrl: string | undefined;
  apiToken: string | undefined;
  contactsUrl: string | undefined;
  reporterUrl: string | undefined;
  /** Which runtime.json filled the gaps, if any. */
  runtimeFile: string | undefined;
}

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean', default: false },
  nats: { type: 'string' },
  token: { type: 'string' },
  'contacts-url': { type: 'string' },
  'reporter-url': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

interface RuntimeFile {
  natsUrl?: string;
  apiToken?: string;
  urls?: Record<string, string>;
}

/** Flags, then environment, then `.clarion/runtime.json` (written by `clarion start`). */
export function resolveConnection(flags: Record<string, unknown>, io: Io): Connection {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  let runtime: RuntimeFile = {};
  let runtimeFile: string | undefined;
  const explicit = str(io.env.CLARION_RUNTIME_FILE);
  if (explicit && !existsSync(explicit)) throw new CliError(EXIT.unavailable, `CLARION_RUNTIME_FILE ${explicit} does not exist`);
  for (const candidate of explicit ? [explicit] : [join(io.cwd, '.clarion', 'runtime.json'), join(REPO_ROOT, '.clarion', 'runtime.json')]) {
    if (candidate && existsSync(candidate)) {
      try {
        runtime = JSON.parse(readFileSync(candidate, 'utf8')) as RuntimeFile;
        runtimeFile = candidate;
      } catch {
        throw new CliError(EXIT.unavailable, `${candidate} is not valid JSON; run \`npm start\` again or pass --nats/--token`);
      }
      break;
    }
  }
  return {
    natsUrl: str(flags.nats) ?? str(io.env.CLARION_NATS_URL) ?? str(io.env.NATS_URL) ?? runtime.natsUrl,
    apiToken: str(flags.token) ?? str(io.env.CLARION_API_TOKEN) ?? runtime.apiToken,
    contactsUrl: str(flags['contacts-url']) ?? str(io.env.CLARION_CONTACTS_URL) ?? runtime.urls?.contacts,
    reporterUrl: str(flags['reporter-url']) ?? str(io.env.CLARION_REPORTER_URL) ?? runtime.urls?.reporter,
    runtimeFile,
  };
}

const HOW_TO_CONNECT = 'start Clarion with `npm start`, or set it with a flag or variable (see `clarion help`)';

/** A value of the connection or a clear exit-3 error naming the flag and variable. */
export function need(conn: Connection, key: 'natsUrl' | 'apiToken' | 'contactsUrl' | 'reporterUrl'): string {
  const value = conn[key];
  if (value) return value;
  const names = {
    natsUrl: '--nats / CLARION_NATS_URL',
    apiToken: '--token / CLARION_API_TOKEN',
    contactsUrl: '--contacts-url / CLARION_CONTACTS_URL',
    reporterUrl: '--reporter-url / CLARION_REPORTER_URL',
  } as const;
  throw new CliError(EXIT.unavailable, `no ${names[key]} and no .clarion/runtime.json: ${HOW_TO_CONNECT}`);
}

/** A REST client whose failures become CliErrors with meaningful exit codes. */
export function api(conn: Connection, service: 'contacts' | 'reporter') {
  const base = need(conn, service === 'contacts' ? 'contactsUrl' : 'reporterUrl');
  const client = restClient(base, need(conn, 'apiToken'));
  const wrap =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (error) {
        throw toCliError(error, `${service} at ${base}`);
      }
    };
  return { base, get: wrap(client.get), post: wrap(client.post), del: wrap(client.del), patch: wrap(client.patch) };
}

/** Map network and API failures to exit codes. */
export function toCliError(error: unknown, where: string): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof ApiError) {
    if (error.status === 401 || error.status === 403) return new CliError(EXIT.unavailable, `${where} refused the API token: ${error.message}`);
    if (error.status === 404) {
      // A route the service does not have: most likely the URL points at another Clarion service.
      const message = error.message.startsWith('no route for') ? `${error.message} at ${where}: is that URL the ${where.split(' ')[0]} service?` : error.message;
      return new CliError(EXIT.notFound, message, error.body);
    }
    if (error.status >= 400 && error.status < 500) return new CliError(EXIT.usage, error.message, error.body);
    return new CliError(EXIT.failed, error.message, error.body);
  }
  if (error instanceof NatsUnreachable) return new CliError(EXIT.unavailable, `cannot reach ${where} (${error.message}); is Clarion running?`);
  const text = error instanceof Error ? `${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}` : String(error);
  if (/ECONNREFUSED|fetch failed|ENOTFOUND|CONNECTION_REFUSED|no responders|503/i.test(text)) {
    return new CliError(EXIT.unavailable, `cannot reach ${where} (${text}); is Clarion running?`);
  }
  return new CliError(EXIT.failed, text);
}

/** parseArgs with the common options, turning its errors into usage errors. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: O,
  allowPositionals = true,
): ReturnType<typeof parseArgs<{ args: string[]; options: typeof COMMON_OPTIONS & O; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: allowPositionals as true, strict: true });
  } catch (error) {
    const message = (error as Error).message;
    // `--token -abc` or `--retry-delay -5`: parseArgs reads the value as an option; say how to write it.
    const flag = /^Option '(--[\w-]+)' argument is ambiguous/.exec(message)?.[1];
    const value = flag === undefined ? undefined : args[args.indexOf(flag) + 1];
    if (flag !== undefined && value !== undefined) {
      throw new CliError(EXIT.usage, `${flag} ${flag === '--token' ? '-…' : value}: a value that starts with '-' is read as an option; write ${flag}=${flag === '--token' ? '<token>' : value}`);
    }
    throw new CliError(EXIT.usage, message);
  }
}

/** Write one JSON line (for --json). */
export function printJson(io: Io, value: unknown): void {
  io.out.write(`${JSON.stringify(value)}\n`);
}

/** A left-aligned two-column table. */
export function table(rows: [string, string | number][], indent = '  '): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`).join('\n');
}

/** A text progress bar of `width` cells. */
export function bar(done: number, total: number, width = 30): string {
  const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : 0;
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

/** A positive number option or a usage error naming the flag. */
export function positive(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0)) throw new CliError(EXIT.usage, `${flag} must be a positive number, got "${value}"`);
  return n;
}

/** A number option that may be 0 but not negative (a delay), or a usage error naming the flag. */
export function nonNegative(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0) || !Number.isFinite(n)) throw new CliError(EXIT.usage, `${flag} must be a positive number (or 0), got "${value}"`);
  return n;
}

/** A finite number option (any sign) or a usage error naming the flag. */
export function numeric(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new CliError(EXIT.usage, `${flag} must be a number, got "${value}"`);
  return n;
}

/** The contact fields an import can map a column to (the contacts service's `map.<field>`). */
export const IMPORT_FIELDS = ['phone', 'name', 'firstName', 'lastName', 'country', 'language', 'timezone', 'externalId'] as const;

/** Options naming the import columns: `--map-phone HEADER` and `--map FIELD=HEADER` (repeatable). */
export const MAP_OPTIONS = {
  'map-phone': { type: 'string' },
  map: { type: 'string', multiple: true },
} as const satisfies ParseArgsConfig['options'];

/** `--map-phone`/`--map` as the contacts import's `map.<field>` query parameters, checked here. */
export function columnMapping(values: { 'map-phone'?: string | undefined; map?: string[] | undefined }): Record<string, string> {
  const query: Record<string, string> = {};
  for (const entry of values.map ?? []) {
    const at = entry.indexOf('=');
    const field = IMPORT_FIELDS.find((f) => f.toLowerCase() === entry.slice(0, Math.max(at, 0)).trim().toLowerCase());
    const header = entry.slice(at + 1).trim();
    if (at < 0 || !field || header === '') {
      throw new CliError(EXIT.usage, `--map takes FIELD=HEADER with FIELD one of ${IMPORT_FIELDS.join(', ')}, got "${entry}"`);
    }
    query[`map.${field}`] = header;
  }
  if (values['map-phone'] !== undefined) {
    if (values['map-phone'].trim() === '') throw new CliError(EXIT.usage, '--map-phone needs the header of the phone column');
    query['map.phone'] = values['map-phone'].trim();
  }
  return query;
}

/** An import refusal in the CLI's terms: the column problems, and the flag that fixes a missing phone column. */
export function importProblem(body: unknown, fallback: string): string {
  const error = (body as { error?: { message?: string; details?: { path?: string; message?: string }[] } } | undefined)?.error;
  const message = error?.message ?? fallback;
  const columns = (error?.details ?? []).filter((d) => d.path?.startsWith('map.')).map((d) => d.message ?? '');
  if (/no phone column/i.test(message)) {
    return `no phone column found${columns[0] ? ` (${columns[0].replace(/^no phone column /, '')})` : ''}; name it with --map-phone HEADER (or --map phone=HEADER)`;
  }
  return columns.length > 0 ? `${message} (${columns.join('; ')})` : message;
}

/** A `--country` option as an ISO 3166 code (aliases such as "UK" accepted), or a usage error. */
export function countryOption(value: string | undefined, flag = '--country'): string | undefined {
  if (value === undefined) return undefined;
  const code = countryCode(value);
  if (!code) throw new CliError(EXIT.usage, `${flag} "${value}" is not a country Clarion knows; use an ISO code such as US or GB`);
  return code;
}
