import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { parsePhoneNumberFromString, isSupportedCountry, type CountryCode } from 'libphonenumber-js/max';
import { batchMessage, resultsOf, type ReplyMessage } from './wire.js';

/** Common ways spreadsheets spell a country, mapped to ISO 3166 alpha-2. */
const COUNTRY_ALIASES: Record<string, string> = {
  UK: 'GB',
  'GREAT BRITAIN': 'GB',
  BRITAIN: 'GB',
  ENGLAND: 'GB',
  SCOTLAND: 'GB',
  WALES: 'GB',
  'NORTHERN IRELAND': 'GB',
  'UNITED KINGDOM': 'GB',
  USA: 'US',
  'U.S.': 'US',
  'U.S.A.': 'US',
  AMERICA: 'US',
  'UNITED STATES': 'US',
  'UNITED STATES OF AMERICA': 'US',
  IRELAND: 'IE',
  CANADA: 'CA',
  AUSTRALIA: 'AU',
  'NEW ZEALAND': 'NZ',
  GERMANY: 'DE',
  FRANCE: 'FR',
  SPAIN: 'ES',
  ITALY: 'IT',
  NETHERLANDS: 'NL',
  INDIA: 'IN',
};

/** The ISO alpha-2 code for a country given as a code or a common name; undefined when unknown. */
export function countryCode(value: string | undefined | null): CountryCode | undefined {
  if (!value) return undefined;
  const key = value.trim().toUpperCase().replace(/\s+/g, ' ');
  if (key === '') return undefined;
  const code = COUNTRY_ALIASES[key] ?? key;
  return isSupportedCountry(code) ? (code as CountryCode) : undefined;
}

export type NormalisedNumber =
  | {
      ok: true;
      /** E.164 with `+`. */
      e164: string;
      country: string | undefined;
      /** Possible by length but not in current numbering tables: accepted, flagged. */
      flagged: boolean;
      /** How the number was read when the row's country (or the default) did not fit. */
      readAs?: 'international' | 'timezone';
      /** An extension written after the number ("ext 9", "x12"): not part of `e164`, so not dialled. */
      extension?: string;
    }
  | { ok: false; reason: string };

/** Countries of the time zones contact exports commonly carry; a hint, used only as a fallback. */
const ZONE_COUNTRIES: Record<string, string> = {
  'Europe/London': 'GB',
  'Europe/Belfast': 'GB',
  'Europe/Dublin': 'IE',
  'Europe/Paris': 'FR',
  'Europe/Berlin': 'DE',
  'Europe/Madrid': 'ES',
  'Europe/Rome': 'IT',
  'Europe/Amsterdam': 'NL',
  'America/New_York': 'US',
  'America/Chicago': 'US',
  'America/Denver': 'US',
  'America/Phoenix': 'US',
  'America/Los_Angeles': 'US',
  'America/Anchorage': 'US',
  'America/Detroit': 'US',
  'Pacific/Honolulu': 'US',
  'America/Toronto': 'CA',
  'America/Vancouver': 'CA',
  'Australia/Sydney': 'AU',
  'Australia/Melbourne': 'AU',
  'Pacific/Auckland': 'NZ',
  'Asia/Kolkata': 'IN',
};

/** The country a time zone implies, when it implies exactly one. */
export function countryOfTimeZone(timezone: string | undefined | null): CountryCode | undefined {
  return timezone ? countryCode(ZONE_COUNTRIES[timezone.trim()]) : undefined;
}

type Reading = { e164: string; country: string | undefined; valid: boolean; extension: string | undefined };

function read(text: string, country: CountryCode | undefined): Reading | { reason: string } {
  const parsed = parsePhoneNumberFromString(text, country ? { defaultCountry: country } : {});
  if (!parsed) return { reason: country ? 'not a phone number' : 'national-format number with no country to interpret it' };
  if (!parsed.isPossible()) return { reason: `impossible number for ${parsed.country ?? `+${parsed.countryCallingCode}`}` };
  // libphonenumber's "possible" is only a length check; in North America an area code or exchange
  // starting with 0 or 1 is not unassigned but cannot exist (0207946010 read as US, say).
  if (parsed.countryCallingCode === '1' && /^(?:[01]|\d{3}[01])/.test(parsed.nationalNumber)) {
    return { reason: `impossible number for ${parsed.country ?? '+1'}: area code and exchange cannot start with 0 or 1` };
  }
  return { e164: parsed.number, country: parsed.country, valid: parsed.isValid(), extension: parsed.ext };
}

/** An extension at the end of a written number: "ext 9", "ext. 9", "extension 9", "x12", "#12", ";ext=12". */
const EXTENSION = /\s*(?:;\s*ext=|(?<![a-z])(?:ext(?:ension)?|x)\.?|#)\s*(\d{1,10})$/i;

/**
 * Normalise a phone number to E.164 once, using the row's country, else the default. Valid numbers
 * pass; possible-but-unassigned numbers pass flagged (a wrongly dropped emergency contact is worse
 * than a failed call); impossible ones fail with a reason.
 *
 * Only when that reading is impossible or unassigned are rescues tried, in order: a leading `00`
 * read as `+` (the international prefix of most countries), a long bare digit string read as
 * international (`441134960978`), and the country of the row's time zone. A rescue is taken only
 * if it gives a valid number.
 */
export function normaliseNumber(
  input: string,
  options: {
    country?: string | undefined | null;
    defaultCountry?: string | undefined;
    timezone?: string | undefined | null;
  } = {},
): NormalisedNumber {
  const written = input.trim();
  if (written === '') return { ok: false, reason: 'empty phone number' };
  // The extension is taken off first, so its digits never join the number's in the readings below.
  const extensionMatch = EXTENSION.exec(written);
  const raw = extensionMatch ? written.slice(0, extensionMatch.index) : written;
  if (/[a-z]/i.test(raw)) return { ok: false, reason: 'phone number contains letters' };
  if (!/\d/.test(raw)) return { ok: false, reason: 'phone number has no digits' };
  const rowCountry = countryCode(options.country);
  if (options.country && options.country.trim() !== '' && rowCountry === undefined) {
    return { ok: false, reason: `unknown country "${options.country.trim()}"` };
  }
  const primary = read(raw, rowCountry ?? countryCode(options.defaultCountry));
  // libphonenumber knows a few more spellings of an extension than EXTENSION does.
  const extension = extensionMatch?.[1] ?? ('e164' in primary ? primary.extension : undefined);
  const accepted = (n: Omit<Extract<NormalisedNumber, { ok: true }>, 'ok'>): NormalisedNumber =>
    extension === undefined ? { ok: true, ...n } : { ok: true, ...n, extension };
  if ('e164' in primary && primary.valid) return accepted({ e164: primary.e164, country: primary.country, flagged: false });

  const digits = raw.replace(/[^\d+]/g, '');
  const rescues: [Parameters<typeof read>, 'international' | 'timezone'][] = [];
  if (digits.startsWith('00')) rescues.push([[`+${digits.slice(2)}`, undefined], 'international']);
  else if (!digits.startsWith('+') && !digits.startsWith('0') && digits.length >= 11) rescues.push([[`+${digits}`, undefined], 'international']);
  const zoneCountry = countryOfTimeZone(options.timezone);
  if (zoneCountry && zoneCountry !== (rowCountry ?? countryCode(options.defaultCountry))) rescues.push([[raw, zoneCountry], 'timezone']);
  for (const [args, readAs] of rescues) {
    const rescue = read(...args);
    if ('e164' in rescue && rescue.valid) return accepted({ e164: rescue.e164, country: rescue.country, flagged: false, readAs });
  }
  if ('e164' in primary) return accepted({ e164: primary.e164, country: primary.country, flagged: true });
  const defaulted = rowCountry === undefined && !/^(\+|00)/.test(digits) && countryCode(options.defaultCountry);
  return { ok: false, reason: defaulted ? `${primary.reason} (no country given; read as ${defaulted})` : primary.reason };
}

/** E.164 without `+`, as the Voice API wants it. */
export const voiceApiNumber = (e164: string): string => e164.replace(/^\+/, '');

/** One number to normalise with its options, as `normaliseNumber` takes them. */
export interface NumberToNormalise {
  input: string;
  country?: string | undefined | null;
  defaultCountry?: string | undefined;
  timezone?: string | undefined | null;
}

/** `normaliseNumber` over a batch, results in the batch's order. */
export function normaliseNumbers(batch: readonly NumberToNormalise[]): NormalisedNumber[] {
  return batch.map(({ input, ...options }) => normaliseNumber(input, options));
}

/** Normalises batches on worker threads: the same results as `normaliseNumbers`, off the calling thread. */
export interface NormaliserPool {
  /** Results in the batch's order; a batch whose worker fails or is closed is normalised inline instead. */
  normalise(batch: readonly NumberToNormalise[]): Promise<NormalisedNumber[]>;
  /** Stop the threads; later batches start them again. */
  close(): Promise<void>;
  /** Worker threads running now (started on first use, gone after `close` or a failure). */
  running(): number;
}

/** Worker threads worth starting beside the calling thread: one per spare core, at most two. */
export function defaultNormaliserThreads(): number {
  return Math.max(0, Math.min(2, availableParallelism() - 1));
}

interface Task {
  id: number;
  batch: readonly NumberToNormalise[];
  resolve: (results: NormalisedNumber[]) => void;
  reject: (error: Error) => void;
}

interface PoolThread {
  worker: Worker;
  tasks: Map<number, Task>;
}

// Under vitest this module runs from src/*.ts, which a worker thread cannot load: use the built script.
const WORKER_SCRIPT = import.meta.url.endsWith('.ts')
  ? new URL('../dist/normalise-worker.js', import.meta.url)
  : new URL('./normalise-worker.js', import.meta.url);

/**
 * A pool of `threads` workers (started on first use) normalising batches of numbers; libphonenumber
 * is CPU-bound, so a large import normalises its next batches on another core while the calling
 * thread stores the previous one. With `threads` 0 every batch is normalised inline.
 */
export function createNormaliserPool(options: { threads: number }): NormaliserPool {
  const threads: PoolThread[] = [];
  let nextId = 0;
  // A worker that threw (a script that cannot load, say) would fail again: stay inline from then on.
  let broken = false;
  const countries = new Map<string, string>();
  const intern = (country: string): string => {
    const known = countries.get(country);
    if (known !== undefined) return known;
    countries.set(country, country);
    return country;
  };

  // A worker that failed or was stopped hands its batches back to the calling thread: never lost.
  const retire = (thread: PoolThread): void => {
    const at = threads.indexOf(thread);
    if (at >= 0) threads.splice(at, 1);
    for (const task of thread.tasks.values()) settleInline(task);
    thread.tasks.clear();
  };

  const start = (): PoolThread => {
    const thread: PoolThread = { worker: new Worker(WORKER_SCRIPT), tasks: new Map() };
    thread.worker.on('message', (reply: ReplyMessage) => {
      const task = thread.tasks.get(reply.id);
      if (!task) return;
      thread.tasks.delete(reply.id);
      // An idle worker must not keep the process alive; a busy one must, or an awaited batch is lost.
      if (thread.tasks.size === 0) thread.worker.unref();
      if ('error' in reply) task.reject(new Error(reply.error));
      else task.resolve(resultsOf(reply, intern));
    });
    thread.worker.on('error', () => {
      broken = true;
      retire(thread);
    });
    thread.worker.on('exit', () => retire(thread));
    thread.worker.unref();
    threads.push(thread);
    return thread;
  };

  return {
    normalise(batch) {
      return new Promise<NormalisedNumber[]>((resolve, reject) => {
        const task: Task = { id: nextId++, batch, resolve, reject };
        if (options.threads <= 0 || broken || batch.length === 0) return settleInline(task);
        // An idle thread takes it, else a new one while there are fewer than `threads`, else the least busy.
        let thread = threads.find((t) => t.tasks.size === 0);
        if (!thread && threads.length < options.threads) {
          try {
            thread = start();
          } catch {
            broken = true; // no thread can be started here (resource limits, say)
            return settleInline(task);
          }
        }
        thread ??= threads.reduce((a, b) => (b.tasks.size < a.tasks.size ? b : a));
        thread.tasks.set(task.id, task);
        thread.worker.ref();
        thread.worker.postMessage(batchMessage(task.id, batch));
      });
    },
    running: () => threads.length,
    async close() {
      const stopping = threads.splice(0);
      await Promise.all(
        stopping.map(async (thread) => {
          await thread.worker.terminate();
          retire(thread);
        }),
      );
    },
  };
}

function settleInline(task: Task): void {
  try {
    task.resolve(normaliseNumbers(task.batch));
  } catch (error) {
    task.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
