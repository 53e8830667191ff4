/** The embedded store: in-memory collections evaluating MongoDB documents with mingo, optionally journaled. */

import { Aggregator, Query, find as mingoFind, update as mingoUpdate, updateOne as mingoUpdateOne } from 'mingo';
import { cloneDoc, encode, mapKey, newId } from './codec.js';
import { Journal, type CollectionState, type JournalRecord } from './journal.js';
import {
  DuplicateKeyError,
  type BulkOperation,
  type BulkWriteResult,
  type Collection,
  type Cursor,
  type Doc,
  type Filter,
  type FindOptions,
  type IndexOptions,
  type Store,
  type Update,
  type UpdateOptions,
  type UpdateResult,
} from './port.js';
import { fastUpdate } from './fast-update.js';
import { isOperatorObject, upsertSeed } from './upsert-seed.js';

type Log = JournalRecord[];
type Keys = Record<string, 1 | -1>;

/** A level of a unique index: the key of one field's value → the next level, or the document at the last. */
type IndexLevel = Map<string, IndexLevel | Doc>;

/**
 * A unique index as nested Maps, one level per field, keyed by `mapKey` of the field's value: string
 * values (the usual case) are their own keys, so indexing a document builds and keeps no key string.
 */
class UniqueIndex {
  private readonly root: IndexLevel = new Map();
  private readonly paths: string[][];

  constructor(
    readonly name: string,
    readonly fields: string[],
  ) {
    this.paths = fields.map((field) => field.split('.'));
  }

  /** The keys `doc` is indexed under; a missing field indexes as null, as in a non-sparse MongoDB index. */
  keysOf(doc: Doc): string[] {
    return this.paths.map((path) => mapKey(getParts(doc, path) ?? null));
  }

  /** The keys of a filter's equality values on the indexed fields (all strings, numbers or booleans). */
  keysOfFilter(filter: Filter): string[] {
    return this.fields.map((field) => mapKey(filter[field]));
  }

  get(keys: string[]): Doc | undefined {
    let level: IndexLevel | undefined = this.root;
    const last = keys.length - 1;
    for (let i = 0; i < last && level; i++) level = level.get(keys[i] as string) as IndexLevel | undefined;
    return level?.get(keys[last] as string) as Doc | undefined;
  }

  set(keys: string[], doc: Doc): void {
    let level = this.root;
    const last = keys.length - 1;
    for (let i = 0; i < last; i++) {
      const key = keys[i] as string;
      let next = level.get(key) as IndexLevel | undefined;
      if (!next) level.set(key, (next = new Map()));
      level = next;
    }
    level.set(keys[last] as string, doc);
  }

  /** Remove an entry, and the levels it leaves empty. */
  delete(keys: string[]): void {
    const levels: IndexLevel[] = [this.root];
    for (let i = 0; i < keys.length - 1; i++) {
      const next = (levels[i] as IndexLevel).get(keys[i] as string) as IndexLevel | undefined;
      if (!next) return;
      levels.push(next);
    }
    for (let i = keys.length - 1; i >= 0; i--) {
      const level = levels[i] as IndexLevel;
      level.delete(keys[i] as string);
      if (level.size > 0) return;
    }
  }
}

/** Errors MongoDB raises for malformed writes (not duplicate keys). */
export class StoreWriteError extends Error {
  override readonly name = 'StoreWriteError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function getParts(doc: Doc, parts: string[]): unknown {
  let node: unknown = doc;
  for (const part of parts) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function isFastValue(value: unknown): value is string | number | boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/**
 * A matcher for filters made only of `field: primitive` equalities, far cheaper than mingo per
 * document; a document whose value there is an object or array (array containment, …) goes to `slow`.
 */
function equalityMatcher(filter: Filter, slow: () => Query): ((doc: Doc) => boolean) | undefined {
  const entries = Object.entries(filter);
  // Dotted paths may cross arrays (`{'a.b': 1}` matches `{a: [{b: 1}]}`): those stay with mingo.
  if (!entries.every(([field, value]) => !field.startsWith('$') && !field.includes('.') && isFastValue(value))) return undefined;
  return (doc) => {
    for (const [field, value] of entries) {
      const actual = doc[field];
      if (actual !== null && typeof actual === 'object') return slow().test(doc);
      if (actual !== value) return false;
    }
    return true;
  };
}

function indexName(keys: Keys): string {
  return Object.entries(keys)
    .map(([field, dir]) => `${field}_${dir}`)
    .join('_');
}

function sameValue(a: unknown, b: unknown): boolean {
  return a === b || encode(a) === encode(b);
}

/** A cursor over pages of documents, produced lazily: the query runs as iteration proceeds. */
class PagedCursor<T> implements Cursor<T> {
  constructor(private readonly pages: () => Iterable<T[]>) {}
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for (const page of this.pages()) for (const doc of page) out.push(doc);
    return out;
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (const page of this.pages()) yield* page;
  }
}

/** Documents copied per page of a streamed find: bounds the memory a cursor holds at once. */
const PAGE = 256;

function emptyBulkResult(): BulkWriteResult {
  return { insertedCount: 0, matchedCount: 0, modifiedCount: 0, upsertedCount: 0, deletedCount: 0 };
}

class EmbeddedCollection<T extends Doc = Doc> implements Collection<T> {
  /** `mapKey(_id)` → stored document; Map order is MongoDB's natural (insertion) order. */
  private readonly docs: Map<string, Doc>;
  private readonly unique: UniqueIndex[] = [];
  private readonly indexNames = new Set<string>(['_id_']);

  constructor(
    readonly name: string,
    private readonly journal: Journal | undefined,
    private readonly isClosed: () => boolean,
    state?: CollectionState,
  ) {
    // The replayed documents are the collection's own from now on: no copy of a large Map.
    this.docs = state?.docs ?? new Map();
    if (!state) return;
    for (const [name, index] of state.indexes) this.addIndex(name, index.keys, index.unique);
  }

  // ---- journaling wrapper: runs the synchronous in-memory part, then awaits the journal append.

  private async write<R>(fn: (log: Log) => R): Promise<R> {
    if (this.isClosed()) throw new Error('store is closed');
    const log: Log = [];
    try {
      return fn(log);
    } finally {
      // Runs on failure too: an ordered bulk that stopped midway keeps (and journals) what it did.
      if (log.length > 0 && this.journal) await this.journal.append(log);
    }
  }

  // ---- matching

  private candidates(filter: Filter): { docs: Iterable<Doc>; exact: boolean } {
    const keys = Object.keys(filter);
    if (keys.length === 0) return { docs: this.docs.values(), exact: true };
    if ('_id' in filter) {
      const id = filter._id;
      if (!isOperatorObject(id) && !(id instanceof RegExp)) {
        const doc = this.docs.get(mapKey(id));
        return { docs: doc ? [doc] : [], exact: keys.length === 1 };
      }
      const values = isOperatorObject(id) && Object.keys(id).length === 1 ? id.$in : undefined;
      if (Array.isArray(values) && values.every(isFastValue)) {
        const found: Doc[] = [];
        const seen = new Set<string>();
        for (const value of values) {
          const key = mapKey(value);
          const doc = this.docs.get(key);
          if (doc && !seen.has(key)) {
            seen.add(key);
            found.push(doc);
          }
        }
        // Natural order, as a scan would return them.
        if (found.length > 1) {
          const order = new Map([...this.docs.values()].map((doc, i) => [doc, i]));
          found.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
        }
        return { docs: found, exact: keys.length === 1 };
      }
    }
    for (const index of this.unique) {
      if (!index.fields.every((field) => isFastValue(filter[field]))) continue;
      const doc = index.get(index.keysOfFilter(filter));
      return { docs: doc ? [doc] : [], exact: keys.length === index.fields.length };
    }
    return { docs: this.docs.values(), exact: false };
  }

  /** A predicate for `filter`: plain equalities directly, everything else through mingo. */
  private tester(filter: Filter): (doc: Doc) => boolean {
    let query: Query | undefined;
    const slow = (): Query => (query ??= new Query(filter));
    return equalityMatcher(filter, slow) ?? ((doc) => slow().test(doc));
  }

  /** Stored documents (not copies) matching `filter`, at most `limit` when given. */
  private match(filter: Filter, limit?: number): Doc[] {
    const { docs, exact } = this.candidates(filter);
    const test = exact ? undefined : this.tester(filter);
    const out: Doc[] = [];
    for (const doc of docs) {
      if (test && !test(doc)) continue;
      out.push(doc);
      if (limit !== undefined && out.length >= limit) break;
    }
    return out;
  }

  // ---- index maintenance

  private addIndex(name: string, keys: Keys, unique: boolean): void {
    this.indexNames.add(name);
    if (!unique) return;
    const index = new UniqueIndex(name, Object.keys(keys));
    for (const doc of this.docs.values()) {
      const key = index.keysOf(doc);
      if (index.get(key)) throw new DuplicateKeyError(this.name, this.keyValue(index, doc));
      index.set(key, doc);
    }
    this.unique.push(index);
  }

  private keyValue(index: UniqueIndex, doc: Doc): Record<string, unknown> {
    return Object.fromEntries(index.fields.map((field) => [field, getParts(doc, field.split('.')) ?? null]));
  }

  /**
   * Store `next` in place of `previous` (undefined: a new document), or throw DuplicateKeyError before
   * changing anything if it would collide on `_id` or a unique index.
   */
  private put(next: Doc, previous: Doc | undefined, log: Log): void {
    const id = mapKey(next._id);
    if (!previous && this.docs.has(id)) throw new DuplicateKeyError(this.name, { _id: next._id });
    // Each index's keys are computed once, for the check and the write.
    const keys = this.unique.map((index) => index.keysOf(next));
    this.unique.forEach((index, i) => {
      const owner = index.get(keys[i] as string[]);
      if (owner !== undefined && owner !== previous) throw new DuplicateKeyError(this.name, this.keyValue(index, next));
    });
    this.unique.forEach((index, i) => {
      if (previous) index.delete(index.keysOf(previous));
      index.set(keys[i] as string[], next);
    });
    this.docs.set(id, next);
    log.push({ c: this.name, op: 'put', doc: next });
  }

  private commitDelete(doc: Doc, log: Log): void {
    for (const index of this.unique) index.delete(index.keysOf(doc));
    this.docs.delete(mapKey(doc._id));
    log.push({ c: this.name, op: 'del', id: doc._id });
  }

  // ---- synchronous write primitives (shared by the single ops and bulkWrite)

  private insertSync(document: Doc, log: Log): unknown {
    if (document === null || typeof document !== 'object' || Array.isArray(document)) {
      throw new StoreWriteError(2, 'document must be an object');
    }
    const copy = cloneDoc(document);
    const doc: Doc = '_id' in copy && copy._id !== undefined ? copy : { _id: newId(), ...copy };
    this.put(doc, undefined, log);
    return doc._id;
  }

  private applyUpdate(doc: Doc, update: Update, inserting: boolean): { doc: Doc; modified: boolean } {
    if (Array.isArray(update)) {
      const docs = [cloneDoc(doc)];
      // Reason for the cast: mingo's PipelineStage union is narrower than the port's pipeline type.
      const result = mingoUpdateOne(docs, {}, update as Parameters<typeof mingoUpdateOne>[2], { cloneMode: 'deep' });
      return { doc: docs[0] as Doc, modified: result.modifiedCount > 0 || inserting };
    }
    const ops = Object.keys(update);
    if (ops.length === 0 || !ops.every((op) => op.startsWith('$'))) {
      throw new StoreWriteError(9, 'Update document requires atomic operators');
    }
    const { $setOnInsert, ...rest } = update;
    let modifier: Record<string, unknown> = rest;
    if (inserting && $setOnInsert && typeof $setOnInsert === 'object') {
      modifier = { ...rest, $set: { ...((rest.$set as Doc | undefined) ?? {}), ...($setOnInsert as Doc) } };
    }
    if (Object.keys(modifier).length === 0) return { doc: cloneDoc(doc), modified: false };
    const fast = cloneDoc(doc);
    const changed = fastUpdate(fast, modifier);
    if (changed !== undefined) return { doc: fast, modified: changed };
    const copy = cloneDoc(doc);
    const fields = mingoUpdate(copy, modifier, undefined, undefined, { cloneMode: 'deep' });
    return { doc: copy, modified: fields.length > 0 };
  }

  private updateSync(filter: Filter, update: Update, options: UpdateOptions & { multi: boolean }, log: Log): UpdateResult {
    const matches = this.match(filter, options.multi ? undefined : 1);
    if (matches.length === 0) {
      if (!options.upsert) return { matchedCount: 0, modifiedCount: 0, upsertedCount: 0 };
      const seed = upsertSeed(filter);
      const { doc } = this.applyUpdate(seed, update, true);
      if ('_id' in seed && !sameValue(seed._id, doc._id)) {
        throw new StoreWriteError(66, "Performing an update on the path '_id' would modify the immutable field '_id'");
      }
      const { _id, ...fields } = doc;
      const created: Doc = { _id: _id === undefined ? newId() : _id, ...fields };
      this.put(created, undefined, log);
      return { matchedCount: 0, modifiedCount: 0, upsertedCount: 1, upsertedId: created._id };
    }
    let modifiedCount = 0;
    for (const previous of matches) {
      const { doc, modified } = this.applyUpdate(previous, update, false);
      if (!modified) continue;
      if (!sameValue(doc._id, previous._id)) {
        throw new StoreWriteError(66, "Performing an update on the path '_id' would modify the immutable field '_id'");
      }
      this.put(doc, previous, log);
      modifiedCount++;
    }
    return { matchedCount: matches.length, modifiedCount, upsertedCount: 0 };
  }

  private replaceSync(filter: Filter, replacement: Doc, upsert: boolean, log: Log): UpdateResult {
    if (Object.keys(replacement).some((key) => key.startsWith('$'))) {
      throw new StoreWriteError(2, 'Replacement document must not contain atomic operators');
    }
    const [previous] = this.match(filter, 1);
    const { _id, ...fields } = cloneDoc(replacement);
    if (!previous) {
      if (!upsert) return { matchedCount: 0, modifiedCount: 0, upsertedCount: 0 };
      const seedId = upsertSeed(filter)._id;
      const created: Doc = { _id: _id ?? seedId ?? newId(), ...fields };
      this.put(created, undefined, log);
      return { matchedCount: 0, modifiedCount: 0, upsertedCount: 1, upsertedId: created._id };
    }
    if (_id !== undefined && !sameValue(_id, previous._id)) {
      throw new StoreWriteError(66, "Performing an update on the path '_id' would modify the immutable field '_id'");
    }
    const next: Doc = { _id: previous._id, ...fields };
    if (encode(next) === encode(previous)) return { matchedCount: 1, modifiedCount: 0, upsertedCount: 0 };
    this.put(next, previous, log);
    return { matchedCount: 1, modifiedCount: 1, upsertedCount: 0 };
  }

  private deleteSync(filter: Filter, multi: boolean, log: Log): number {
    const matches = this.match(filter, multi ? undefined : 1);
    for (const doc of matches) this.commitDelete(doc, log);
    return matches.length;
  }

  /** Run bulk operations with the driver's ordered/unordered semantics. */
  private bulkSync(operations: BulkOperation<T>[], ordered: boolean, log: Log): BulkWriteResult {
    const result = emptyBulkResult();
    const errors: unknown[] = [];
    const addUpdate = (r: UpdateResult): void => {
      result.matchedCount += r.matchedCount;
      result.modifiedCount += r.modifiedCount;
      result.upsertedCount += r.upsertedCount;
    };
    for (const operation of operations) {
      try {
        if ('insertOne' in operation) {
          this.insertSync(operation.insertOne.document, log);
          result.insertedCount++;
        } else if ('updateOne' in operation) {
          const { filter, update, upsert } = operation.updateOne;
          addUpdate(this.updateSync(filter, update, { upsert, multi: false }, log));
        } else if ('updateMany' in operation) {
          const { filter, update, upsert } = operation.updateMany;
          addUpdate(this.updateSync(filter, update, { upsert, multi: true }, log));
        } else if ('replaceOne' in operation) {
          const { filter, replacement, upsert } = operation.replaceOne;
          addUpdate(this.replaceSync(filter, replacement, upsert ?? false, log));
        } else if ('deleteOne' in operation) {
          result.deletedCount += this.deleteSync(operation.deleteOne.filter, false, log);
        } else if ('deleteMany' in operation) {
          result.deletedCount += this.deleteSync(operation.deleteMany.filter, true, log);
        } else {
          throw new StoreWriteError(2, `unknown bulk operation: ${Object.keys(operation).join(',')}`);
        }
      } catch (error) {
        errors.push(error);
        if (ordered) break;
      }
    }
    const [first] = errors;
    if (first instanceof DuplicateKeyError) {
      throw new DuplicateKeyError(this.name, first.keyValue, { cause: first, result });
    }
    if (first !== undefined) throw first;
    return result;
  }

  // ---- the Collection port

  insertOne(document: T): Promise<{ insertedId: unknown }> {
    return this.write((log) => ({ insertedId: this.insertSync(document, log) }));
  }

  insertMany(documents: T[], options?: { ordered?: boolean }): Promise<{ insertedCount: number }> {
    return this.write((log) => {
      const ops = documents.map((document) => ({ insertOne: { document } }));
      return { insertedCount: this.bulkSync(ops, options?.ordered ?? true, log).insertedCount };
    });
  }

  private read(filter: Filter, options: FindOptions = {}): T[] {
    const { sort, skip, limit, projection } = options;
    const plain = !sort && !skip && !projection;
    const matched = this.match(filter, plain && limit ? limit : undefined);
    let docs: Doc[] = matched;
    if (!plain) {
      let cursor = mingoFind(matched, {}, projection);
      if (sort) cursor = cursor.sort(sort);
      if (skip) cursor = cursor.skip(skip);
      if (limit) cursor = cursor.limit(limit); // limit 0 means "no limit", as in MongoDB
      docs = cursor.all() as Doc[];
    }
    return docs.map((doc) => cloneDoc(doc) as T);
  }

  async findOne(filter: Filter, options?: FindOptions): Promise<T | null> {
    return this.read(filter, { ...options, limit: 1 })[0] ?? null;
  }

  find(filter: Filter, options?: FindOptions): Cursor<T> {
    return new PagedCursor(() => this.pages(filter, options ?? {}));
  }

  /**
   * The pages of a find. Without sort or skip it walks the collection lazily in natural order (like a
   * MongoDB cursor it sees writes made meanwhile, never a document twice), so a million-document
   * result is neither computed up front nor held; with sort or skip the result is computed at once.
   */
  private *pages(filter: Filter, options: FindOptions): Generator<T[]> {
    if (options.sort || options.skip) {
      yield this.read(filter, options);
      return;
    }
    const { docs, exact } = this.candidates(filter);
    const test = exact ? undefined : this.tester(filter);
    const limit = options.limit ? options.limit : Infinity; // limit 0 means "no limit", as in MongoDB
    let taken = 0;
    let page: Doc[] = [];
    const emit = (): T[] => {
      const out = options.projection ? (mingoFind(page, {}, options.projection).all() as Doc[]) : page;
      page = [];
      return out.map((doc) => cloneDoc(doc) as T);
    };
    for (const doc of docs) {
      if (test && !test(doc)) continue;
      page.push(doc);
      taken++;
      if (page.length >= PAGE) yield emit();
      if (taken >= limit) break;
    }
    if (page.length > 0) yield emit();
  }

  updateOne(filter: Filter, update: Update, options?: UpdateOptions): Promise<UpdateResult> {
    return this.write((log) => this.updateSync(filter, update, { upsert: options?.upsert, multi: false }, log));
  }

  updateMany(filter: Filter, update: Update, options?: UpdateOptions): Promise<UpdateResult> {
    return this.write((log) => this.updateSync(filter, update, { upsert: options?.upsert, multi: true }, log));
  }

  replaceOne(filter: Filter, replacement: T, options?: UpdateOptions): Promise<UpdateResult> {
    return this.write((log) => this.replaceSync(filter, replacement, options?.upsert ?? false, log));
  }

  deleteOne(filter: Filter): Promise<{ deletedCount: number }> {
    return this.write((log) => ({ deletedCount: this.deleteSync(filter, false, log) }));
  }

  deleteMany(filter: Filter): Promise<{ deletedCount: number }> {
    return this.write((log) => ({ deletedCount: this.deleteSync(filter, true, log) }));
  }

  async countDocuments(filter: Filter = {}): Promise<number> {
    return Object.keys(filter).length === 0 ? this.docs.size : this.match(filter).length;
  }

  aggregate<R extends Doc = Doc>(pipeline: Doc[]): Cursor<R> {
    return new PagedCursor(() => [this.aggregateAll<R>(pipeline)]);
  }

  private aggregateAll<R>(pipeline: Doc[]): R[] {
    // A leading $match uses the collection's fast paths; the rest runs on private copies.
    const [first, ...rest] = pipeline;
    const leadingMatch = first && Object.keys(first).length === 1 && '$match' in first;
    const input = leadingMatch ? this.match(first.$match as Filter) : [...this.docs.values()];
    const stages = leadingMatch ? rest : pipeline;
    const copies = input.map((doc) => cloneDoc(doc));
    if (stages.length === 0) return copies as R[];
    return new Aggregator(stages).run(copies) as R[];
  }

  bulkWrite(operations: BulkOperation<T>[], options?: { ordered?: boolean }): Promise<BulkWriteResult> {
    return this.write((log) => this.bulkSync(operations, options?.ordered ?? true, log));
  }

  createIndex(keys: Keys, options: IndexOptions = {}): Promise<string> {
    return this.write((log) => {
      const name = options.name ?? indexName(keys);
      if (this.indexNames.has(name)) return name;
      const unique = options.unique ?? false;
      this.addIndex(name, keys, unique);
      log.push({ c: this.name, op: 'index', name, keys, unique });
      return name;
    });
  }
}

/** Open an embedded store; with `dir`, writes are journaled there and replayed on the next open. */
export async function createEmbeddedStore(options: { dir?: string } = {}): Promise<Store> {
  let journal: Journal | undefined;
  let states = new Map<string, CollectionState>();
  if (options.dir) ({ journal, states } = await Journal.open(options.dir));
  const collections = new Map<string, EmbeddedCollection>();
  let closed = false;
  const isClosed = (): boolean => closed;
  return {
    kind: 'embedded',
    collection<T extends Doc = Doc>(name: string): Collection<T> {
      let collection = collections.get(name);
      if (!collection) {
        collection = new EmbeddedCollection(name, journal, isClosed, states.get(name));
        states.delete(name);
        collections.set(name, collection);
      }
      // Reason for the cast: one untyped instance per name serves every typed view of it.
      return collection as unknown as Collection<T>;
    },
    async ping(): Promise<boolean> {
      return !closed;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await journal?.close();
    },
  };
}
