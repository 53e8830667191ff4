import { isTimeZone, type ImportReport } from '@clarion/contracts';
import { normaliseNumbers, type NormalisedNumber, type NumberToNormalise } from '@clarion/phone';
import type { BulkOperation } from '@clarion/store';
import { phoneOf, type ColumnMap } from './columns.js';
import { newId } from './ids.js';
import { isDuplicateKey, type ContactData, type ContactDoc, type ImportDoc, type Repos } from './repo.js';

/** How an import treats numbers already in the list. */
export type ImportMode = 'add' | 'upsert' | 'replace';

/** Report entries kept per kind (the totals are always exact). */
export const REPORT_LIMIT = 1000;
const BATCH = 500;
/** Batches of read rows being normalised while earlier ones are written: bounds memory, keeps a worker busy. */
const AHEAD = 2;
/** Least time between two progress saves of a running import, in ms. */
const PROGRESS_EVERY_MS = 1000;

/** Normalises a batch of numbers, results in order (a worker pool's `normalise`, or inline). */
export type Normalise = (batch: NumberToNormalise[]) => Promise<NormalisedNumber[]>;

const normaliseInline: Normalise = async (batch) => normaliseNumbers(batch);

export interface ImporterOptions {
  repos: Repos;
  listId: string;
  jobId: string;
  mode: ImportMode;
  defaultCountry: string;
  now: () => Date;
  /** How to find existing numbers of a batch: one `$in` query (MongoDB) or one lookup each (embedded). */
  lookup?: 'batch' | 'each';
  /** Where numbers are normalised (a worker pool); inline when not given. */
  normalise?: Normalise;
}

/** A row as read, before its number is normalised; `reason` marks a row that could not be read. */
type ReadRow = { row: number; values: (string | undefined)[]; columns: ColumnMap } | { row: number; reason: string };

/** Read rows and the promise of their numbers (for the rows with `values`, in order). */
interface ReadBatch {
  rows: ReadRow[];
  numbers: Promise<NormalisedNumber[]>;
}

interface Candidate {
  row: number;
  contact: ContactData;
}


export function reportOf(doc: ImportDoc): ImportReport {
  const { _id, ...rest } = doc;
  return { jobId: _id, ...rest };
}


/**
 * Imports rows into one list in batches, so memory stays flat whatever the file size: while a batch is
 * written, the next ones (at most AHEAD) are being normalised, on a worker thread when `normalise` is
 * a pool's, and rows are reported and written in the order read whatever thread did them. Within-file
 * duplicates are found through the `importId`/`importRow` stamp on each written contact; the
 * unique (listId, number) index is the final word when imports race.
 */
export class Importer {
  private readonly doc: ImportDoc;
  private readonly normalise: Normalise;
  /** Rows read and not yet sent to be normalised. */
  private reading: ReadRow[] = [];
  /** Batches sent to be normalised, oldest first. */
  private ahead: ReadBatch[] = [];
  /** Normalised contacts not yet written. */
  private pending: Candidate[] = [];
  private savedAt = 0;

  constructor(private readonly options: ImporterOptions) {
    this.normalise = options.normalise ?? normaliseInline;
    this.doc = {
      _id: options.jobId,
      listId: options.listId,
      status: 'running',
      mode: options.mode,
      rowsRead: 0,
      imported: 0,
      updated: 0,
      unchanged: 0,
      removed: 0,
      flagged: 0,
      invalidCount: 0,
      duplicateCount: 0,
      extensionDroppedCount: 0,
      invalid: [],
      duplicate: [],
      extensionDropped: [],
      startedAt: options.now().toISOString(),
    };
  }

  /** Record the job so its progress can be polled. */
  async begin(): Promise<void> {
    await this.options.repos.imports.insertOne({ ...this.doc });
  }

  /**
   * Take one data row; numbers are normalised and rows written per batch, in the order read. `line`
   * is where the row starts in the file (header = line 1), the number reports give; without it (JSON)
   * rows are numbered 1, 2, … in order.
   */
  async row(values: (string | undefined)[], columns: ColumnMap, line?: number): Promise<void> {
    const row = line ?? this.doc.rowsRead + 1;
    this.doc.rowsRead++;
    this.reading.push({ row, values, columns });
    if (this.reading.length >= BATCH) await this.readBatch();
  }

  /** Count a row that cannot be read at all as invalid (reported in its place among the rows). */
  skip(reason: string): void {
    this.reading.push({ row: ++this.doc.rowsRead, reason });
  }

  /** Send the rows read so far to be normalised; write the oldest batches once more than AHEAD wait. */
  private async readBatch(): Promise<void> {
    this.send();
    while (this.ahead.length > AHEAD) await this.take(this.ahead.shift() as ReadBatch, true);
  }

  /** Every row read, taken in order: written when `write`, else only counted (a failed import). */
  private async takeAll(write: boolean): Promise<void> {
    this.send();
    while (this.ahead.length > 0) await this.take(this.ahead.shift() as ReadBatch, write);
  }

  /** Start normalising the rows read so far, as one batch. */
  private send(): void {
    if (this.reading.length === 0) return;
    const rows = this.reading;
    this.reading = [];
    const numbers = this.normalise(rows.flatMap((r) => ('values' in r ? [this.numberOf(r.values, r.columns)] : [])));
    // Awaited in turn later; until then a failure must not count as unhandled.
    numbers.catch(() => undefined);
    this.ahead.push({ rows, numbers });
  }

  private numberOf(values: (string | undefined)[], columns: ColumnMap): NumberToNormalise {
    const { fields } = columns;
    return {
      input: phoneOf(values, columns) ?? '',
      country: field(values, fields.country),
      defaultCountry: this.options.defaultCountry,
      timezone: field(values, fields.timezone),
    };
  }

  /** Report or queue each row of a normalised batch; pending contacts are written per BATCH when `write`. */
  private async take(batch: ReadBatch, write: boolean): Promise<void> {
    const numbers = await batch.numbers;
    let next = 0;
    for (const read of batch.rows) {
      if (!('values' in read)) {
        this.invalid(read.row, read.reason);
        continue;
      }
      const result = numbers[next++] as NormalisedNumber;
      if (!result.ok) {
        this.invalid(read.row, result.reason);
        continue;
      }
      // The main number is called; the extension cannot be dialled, and the report says so.
      if (result.extension !== undefined) this.extensionDropped(read.row, result.extension);
      if (!write) continue;
      this.pending.push({ row: read.row, contact: contactOf(read.values, read.columns, result) });
      if (this.pending.length >= BATCH) await this.flush();
    }
  }

  /** Write what is pending, finish replace mode, and store the final report. */
  async finish(): Promise<ImportReport> {
    await this.takeAll(true);
    await this.flush();
    if (this.options.mode === 'replace' && this.doc.imported + this.doc.updated + this.doc.unchanged === 0) {
      // An empty or all-invalid file (a bad export) would wipe the list people are called from.
      this.doc.status = 'failed';
      this.doc.error = 'replace refused: the file has no valid contact, so replacing would empty the list; nothing was removed';
    } else {
      if (this.options.mode === 'replace') {
        const removed = await this.options.repos.contacts.deleteMany({
          listId: this.options.listId,
          importId: { $ne: this.options.jobId },
        });
        this.doc.removed = removed.deletedCount;
      }
      this.doc.status = 'completed';
    }
    this.doc.finishedAt = this.options.now().toISOString();
    await this.save();
    return reportOf(this.doc);
  }

  /** Mark the job failed (bad CSV, body too large, store down) keeping what was counted. */
  async fail(error: string): Promise<ImportReport> {
    // Every row read is still counted (invalid, extensions), though none is written any more.
    await this.takeAll(false).catch(() => undefined);
    this.doc.status = 'failed';
    this.doc.error = error;
    this.doc.finishedAt = this.options.now().toISOString();
    await this.save().catch(() => undefined);
    return reportOf(this.doc);
  }

  private invalid(row: number, reason: string): void {
    this.doc.invalidCount++;
    if (this.doc.invalid.length < REPORT_LIMIT) this.doc.invalid.push({ row, reason });
  }

  private extensionDropped(row: number, extension: string): void {
    this.doc.extensionDroppedCount++;
    if (this.doc.extensionDropped.length < REPORT_LIMIT) this.doc.extensionDropped.push({ row, extension });
  }

  /** Count a repeated row; returns its report entry, if listed, so `of` can still be corrected. */
  private duplicate(row: number, of: number): { row: number; of: number } | undefined {
    this.doc.duplicateCount++;
    if (this.doc.duplicate.length >= REPORT_LIMIT) return undefined;
    const entry = { row, of };
    this.doc.duplicate.push(entry);
    return entry;
  }

  private async save(): Promise<void> {
    const { _id, ...fields } = this.doc;
    await this.options.repos.imports.updateOne({ _id }, { $set: fields });
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const { repos, listId, jobId, mode } = this.options;
    const firstRow = new Map<string, number>();
    const unique: Candidate[] = [];
    const repeats: { number: string; entry: { row: number; of: number } }[] = [];
    for (const candidate of batch) {
      const earlier = firstRow.get(candidate.contact.number);
      if (earlier !== undefined) {
        const entry = this.duplicate(candidate.row, earlier);
        if (entry) repeats.push({ number: candidate.contact.number, entry });
      } else {
        firstRow.set(candidate.contact.number, candidate.row);
        unique.push(candidate);
      }
    }
    const existing = new Map<string, ContactDoc>();
    if (this.options.lookup === 'each') {
      // The embedded store answers (listId, number) equality from its unique index; $in would scan.
      for (const { contact } of unique) {
        const doc = await repos.contacts.findOne({ listId, number: contact.number });
        if (doc) existing.set(doc.number, doc);
      }
    } else {
      const found = await repos.contacts.find({ listId, number: { $in: unique.map((c) => c.contact.number) } }).toArray();
      for (const doc of found) existing.set(doc.number, doc);
    }
    // A number first seen in an earlier batch of this file: its repeats here are of that first row.
    for (const { number, entry } of repeats) {
      const doc = existing.get(number);
      if (doc?.importId === jobId && doc.importRow !== undefined) entry.of = doc.importRow;
    }

    const now = this.options.now().toISOString();
    const fresh: Candidate[] = [];
    const writes: BulkOperation<ContactDoc>[] = [];
    for (const candidate of unique) {
      const doc = existing.get(candidate.contact.number);
      if (!doc) {
        fresh.push(candidate);
        continue;
      }
      if (doc.importId === jobId && doc.importRow !== undefined) {
        this.duplicate(candidate.row, doc.importRow);
        continue;
      }
      // The stamp lets a later row of this file be reported as a duplicate of this one.
      const stamp = { importId: jobId, importRow: candidate.row };
      if (mode === 'add' || sameContact(doc, candidate.contact)) {
        this.doc.unchanged++;
        writes.push({ updateOne: { filter: { _id: doc._id }, update: { $set: stamp } } });
      } else {
        this.doc.updated++;
        if (candidate.contact.flagged) this.doc.flagged++;
        const unset: Record<string, ''> = {};
        for (const key of ['name', 'country', 'language', 'timezone', 'externalId'] as const) {
          if (candidate.contact[key] === undefined && doc[key] !== undefined) unset[key] = '';
        }
        const update: Record<string, unknown> = { $set: { ...candidate.contact, ...stamp, updatedAt: now } };
        if (Object.keys(unset).length > 0) update.$unset = unset;
        writes.push({ updateOne: { filter: { _id: doc._id }, update } });
      }
    }
    if (writes.length > 0) await repos.contacts.bulkWrite(writes, { ordered: false });
    await this.insert(fresh, now);
    await this.saveProgress();
  }

  /** Progress for pollers, at most once a second: a save writes the whole report, lists included. */
  private async saveProgress(): Promise<void> {
    const at = this.options.now().getTime();
    if (at - this.savedAt < PROGRESS_EVERY_MS) return;
    this.savedAt = at;
    await this.save();
  }

  private async insert(fresh: Candidate[], now: string): Promise<void> {
    if (fresh.length === 0) return;
    const { repos, listId, jobId } = this.options;
    const docs: ContactDoc[] = fresh.map((c) => ({
      _id: newId('c'),
      listId,
      ...c.contact,
      createdAt: now,
      updatedAt: now,
      importId: jobId,
      importRow: c.row,
    }));
    try {
      await repos.contacts.insertMany(docs, { ordered: false });
      for (const doc of docs) this.counted(doc);
      return;
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    // Another writer raced us on some numbers: settle each document on its own against the index.
    for (const doc of docs) {
      try {
        await repos.contacts.insertOne(doc);
        this.counted(doc);
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        const current = await repos.contacts.findOne({ listId, number: doc.number });
        if (current?._id === doc._id) this.counted(doc);
        else if (current?.importId === jobId && current.importRow !== undefined) this.duplicate(doc.importRow ?? 0, current.importRow);
        else this.doc.unchanged++;
      }
    }
  }

  private counted(doc: ContactDoc): void {
    this.doc.imported++;
    if (doc.flagged) this.doc.flagged++;
  }
}

/** A cell's trimmed value; undefined when the column is absent or the cell empty. */
function field(values: (string | undefined)[], index: number | undefined): string | undefined {
  if (index === undefined) return undefined;
  const value = values[index]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** The contact a row describes, given its normalised number. */
function contactOf(values: (string | undefined)[], columns: ColumnMap, number: Extract<NormalisedNumber, { ok: true }>): ContactData {
  const get = (index: number | undefined) => field(values, index);
  const { fields } = columns;
  const first = get(fields.firstName);
  const last = get(fields.lastName);
  const name = get(fields.name) ?? ([first, last].filter(Boolean).join(' ') || undefined);
  const timezone = get(fields.timezone);
  const vars: Record<string, string> = {};
  for (const { index, key } of columns.vars) {
    const value = get(index);
    if (value !== undefined) vars[key] = value.slice(0, 500);
  }
  const contact: ContactData = { number: number.e164, vars, flagged: number.flagged };
  if (name !== undefined) contact.name = name.slice(0, 200);
  if (number.country !== undefined) contact.country = number.country;
  const language = get(fields.language);
  if (language !== undefined) contact.language = language.slice(0, 20);
  // An unknown time zone is dropped rather than the contact: reaching the person matters more.
  if (timezone !== undefined && isTimeZone(timezone)) contact.timezone = timezone;
  const externalId = get(fields.externalId);
  if (externalId !== undefined) contact.externalId = externalId.slice(0, 200);
  return contact;
}

function sameContact(doc: ContactDoc, next: Candidate['contact']): boolean {
  const keys = ['name', 'country', 'language', 'timezone', 'externalId', 'flagged'] as const;
  if (keys.some((k) => doc[k] !== next[k])) return false;
  return JSON.stringify(sortKeys(doc.vars ?? {})) === JSON.stringify(sortKeys(next.vars));
}

function sortKeys(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => a.localeCompare(b));
}
