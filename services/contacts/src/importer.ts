import { isTimeZone, type ImportReport } from '@clarion/contracts';
import { normaliseNumber } from '@clarion/phone';
import type { BulkOperation } from '@clarion/store';
import type { ColumnMap } from './columns.js';
import { newId } from './ids.js';
import { isDuplicateKey, type ContactData, type ContactDoc, type ImportDoc, type Repos } from './repo.js';

/** How an import treats numbers already in the list. */
export type ImportMode = 'add' | 'upsert' | 'replace';

/** Report entries kept per kind (the totals are always exact). */
export const REPORT_LIMIT = 1000;
const BATCH = 500;

export interface ImporterOptions {
  repos: Repos;
  listId: string;
  jobId: string;
  mode: ImportMode;
  defaultCountry: string;
  now: () => Date;
  /** How to find existing numbers of a batch: one `$in` query (MongoDB) or one lookup each (embedded). */
  lookup?: 'batch' | 'each';
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
 * Imports rows into one list in batches, so memory stays flat whatever the file size. Within-file
 * duplicates are found through the `importId`/`importRow` stamp on each written contact; the
 * unique (listId, number) index is the final word when imports race.
 */
export class Importer {
  private readonly doc: ImportDoc;
  private pending: Candidate[] = [];

  constructor(private readonly options: ImporterOptions) {
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
   * Take one data row; writes happen per batch. `line` is where the row starts in the file (header =
   * line 1), the number reports give; without it (JSON) rows are numbered 1, 2, … in order.
   */
  async row(values: (string | undefined)[], columns: ColumnMap, line?: number): Promise<void> {
    const row = line ?? this.doc.rowsRead + 1;
    this.doc.rowsRead++;
    const get = (index: number | undefined): string | undefined => {
      if (index === undefined) return undefined;
      const value = values[index]?.trim();
      return value === undefined || value === '' ? undefined : value;
    };
    const { fields } = columns;
    const result = normaliseNumber(get(fields.phone) ?? '', {
      country: get(fields.country),
      defaultCountry: this.options.defaultCountry,
      timezone: get(fields.timezone),
    });
    if (!result.ok) {
      this.invalid(row, result.reason);
      return;
    }
    // The main number is called; the extension cannot be dialled, and the report says so.
    if (result.extension !== undefined) this.extensionDropped(row, result.extension);
    const first = get(fields.firstName);
    const last = get(fields.lastName);
    const name = get(fields.name) ?? ([first, last].filter(Boolean).join(' ') || undefined);
    const timezone = get(fields.timezone);
    const vars: Record<string, string> = {};
    for (const { index, key } of columns.vars) {
      const value = get(index);
      if (value !== undefined) vars[key] = value.slice(0, 500);
    }
    const contact: Candidate['contact'] = { number: result.e164, vars, flagged: result.flagged };
    if (name !== undefined) contact.name = name.slice(0, 200);
    if (result.country !== undefined) contact.country = result.country;
    const language = get(fields.language);
    if (language !== undefined) contact.language = language.slice(0, 20);
    // An unknown time zone is dropped rather than the contact: reaching the person matters more.
    if (timezone !== undefined && isTimeZone(timezone)) contact.timezone = timezone;
    const externalId = get(fields.externalId);
    if (externalId !== undefined) contact.externalId = externalId.slice(0, 200);
    this.pending.push({ row, contact });
    if (this.pending.length >= BATCH) await this.flush();
  }

  /** Count a row that cannot be read at all as invalid. */
  skip(reason: string): void {
    this.invalid(++this.doc.rowsRead, reason);
  }

  /** Write what is pending, finish replace mode, and store the final report. */
  async finish(): Promise<ImportReport> {
    await this.flush();
    if (this.options.mode === 'replace') {
      const removed = await this.options.repos.contacts.deleteMany({
        listId: this.options.listId,
        importId: { $ne: this.options.jobId },
      });
      this.doc.removed = removed.deletedCount;
    }
    this.doc.status = 'completed';
    this.doc.finishedAt = this.options.now().toISOString();
    await this.save();
    return reportOf(this.doc);
  }

  /** Mark the job failed (bad CSV, body too large, store down) keeping what was counted. */
  async fail(error: string): Promise<ImportReport> {
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

  private duplicate(row: number, of: number): void {
    this.doc.duplicateCount++;
    if (this.doc.duplicate.length < REPORT_LIMIT) this.doc.duplicate.push({ row, of });
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
    for (const candidate of batch) {
      const earlier = firstRow.get(candidate.contact.number);
      if (earlier !== undefined) this.duplicate(candidate.row, earlier);
      else {
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

function sameContact(doc: ContactDoc, next: Candidate['contact']): boolean {
  const keys = ['name', 'country', 'language', 'timezone', 'externalId', 'flagged'] as const;
  if (keys.some((k) => doc[k] !== next[k])) return false;
  return JSON.stringify(sortKeys(doc.vars ?? {})) === JSON.stringify(sortKeys(next.vars));
}

function sortKeys(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => a.localeCompare(b));
}
