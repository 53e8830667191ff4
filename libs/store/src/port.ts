/**
 * The store port: the small subset of the MongoDB driver's collection API that Clarion uses.
 * Repositories speak MongoDB query, update and pipeline documents; the MongoDB implementation passes
 * them to the driver untouched and the embedded one evaluates the very same documents.
 */

export type Doc = Record<string, unknown>;
export type Filter = Record<string, unknown>;
export type Update = Record<string, unknown> | Record<string, unknown>[];
export type Sort = Record<string, 1 | -1>;
export type Projection = Record<string, 0 | 1 | boolean>;

export interface FindOptions {
  sort?: Sort;
  limit?: number;
  skip?: number;
  projection?: Projection;
}

export interface UpdateOptions {
  upsert?: boolean;
}

export interface UpdateResult {
  matchedCount: number;
  modifiedCount: number;
  upsertedCount: number;
  upsertedId?: unknown;
}

export interface BulkWriteResult {
  insertedCount: number;
  matchedCount: number;
  modifiedCount: number;
  upsertedCount: number;
  deletedCount: number;
}

/** The operations `bulkWrite` takes, in the driver's own shape. */
export type BulkOperation<T extends Doc = Doc> =
  | { insertOne: { document: T } }
  | { updateOne: { filter: Filter; update: Update; upsert?: boolean } }
  | { updateMany: { filter: Filter; update: Update; upsert?: boolean } }
  | { replaceOne: { filter: Filter; replacement: T; upsert?: boolean } }
  | { deleteOne: { filter: Filter } }
  | { deleteMany: { filter: Filter } };

/** A cursor: iterate it with `for await`, or collect it. */
export interface Cursor<T> extends AsyncIterable<T> {
  toArray(): Promise<T[]>;
}

export interface IndexOptions {
  unique?: boolean;
  name?: string;
}

export interface Collection<T extends Doc = Doc> {
  readonly name: string;
  insertOne(document: T): Promise<{ insertedId: unknown }>;
  insertMany(documents: T[], options?: { ordered?: boolean }): Promise<{ insertedCount: number }>;
  findOne(filter: Filter, options?: FindOptions): Promise<T | null>;
  find(filter: Filter, options?: FindOptions): Cursor<T>;
  updateOne(filter: Filter, update: Update, options?: UpdateOptions): Promise<UpdateResult>;
  updateMany(filter: Filter, update: Update, options?: UpdateOptions): Promise<UpdateResult>;
  replaceOne(filter: Filter, replacement: T, options?: UpdateOptions): Promise<UpdateResult>;
  deleteOne(filter: Filter): Promise<{ deletedCount: number }>;
  deleteMany(filter: Filter): Promise<{ deletedCount: number }>;
  countDocuments(filter?: Filter): Promise<number>;
  aggregate<R extends Doc = Doc>(pipeline: Doc[]): Cursor<R>;
  bulkWrite(operations: BulkOperation<T>[], options?: { ordered?: boolean }): Promise<BulkWriteResult>;
  createIndex(keys: Record<string, 1 | -1>, options?: IndexOptions): Promise<string>;
}

export interface Store {
  /** `embedded` or `mongodb`, for logs and readiness. */
  readonly kind: 'embedded' | 'mongodb';
  collection<T extends Doc = Doc>(name: string): Collection<T>;
  /** True when the backing database answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** A write broke a unique index: the same error from both implementations (MongoDB code 11000). */
export class DuplicateKeyError extends Error {
  override readonly name = 'DuplicateKeyError';
  readonly code = 11000;
  /** For insertMany/bulkWrite: what was written before (ordered) or despite (unordered) the failure. */
  readonly result?: BulkWriteResult;
  constructor(
    readonly collection: string,
    readonly keyValue: Record<string, unknown>,
    options?: { cause?: unknown; result?: BulkWriteResult },
  ) {
    super(`E11000 duplicate key error collection: ${collection} dup key: ${JSON.stringify(keyValue)}`, options);
    if (options?.result) this.result = options.result;
  }
}
