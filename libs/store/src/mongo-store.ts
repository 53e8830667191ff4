/** The MongoDB store: a thin pass-through to the official driver, with duplicate keys mapped to DuplicateKeyError. */

import { MongoClient, type AnyBulkWriteOperation, type Collection as DriverCollection, type Document } from 'mongodb';
import { newId } from './codec.js';
import { upsertSeed } from './upsert-seed.js';
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

interface DriverError {
  code?: unknown;
  keyValue?: Record<string, unknown>;
  writeErrors?: { err?: { keyValue?: Record<string, unknown> }; errmsg?: string }[];
  result?: { insertedCount?: number; matchedCount?: number; modifiedCount?: number; upsertedCount?: number; deletedCount?: number };
}

function bulkCounts(result: DriverError['result'] | undefined): BulkWriteResult | undefined {
  if (!result) return undefined;
  return {
    insertedCount: result.insertedCount ?? 0,
    matchedCount: result.matchedCount ?? 0,
    modifiedCount: result.modifiedCount ?? 0,
    upsertedCount: result.upsertedCount ?? 0,
    deletedCount: result.deletedCount ?? 0,
  };
}

/** Run a driver call, turning E11000 (single or bulk) into DuplicateKeyError. */
async function mapErrors<R>(collection: string, fn: () => Promise<R>): Promise<R> {
  try {
    return await fn();
  } catch (error) {
    const e = error as DriverError;
    if (e && e.code === 11000) {
      const keyValue = e.keyValue ?? e.writeErrors?.[0]?.err?.keyValue ?? {};
      const result = bulkCounts(e.result);
      throw new DuplicateKeyError(collection, keyValue, result ? { cause: error, result } : { cause: error });
    }
    throw error;
  }
}

function withId<T extends Doc>(doc: T): T {
  // String ids like the embedded store's, so ids look the same whichever store a service runs on.
  return '_id' in doc && doc._id !== undefined ? doc : { _id: newId(), ...doc };
}

function withUpsertId(filter: Filter, update: Update, upsert: boolean | undefined): Update {
  if (!upsert || '_id' in upsertSeed(filter) || Array.isArray(update)) return update;
  const set = update.$set as Doc | undefined;
  const setOnInsert = (update.$setOnInsert as Doc | undefined) ?? {};
  if ((set && '_id' in set) || '_id' in setOnInsert) return update;
  return { ...update, $setOnInsert: { _id: newId(), ...setOnInsert } };
}

function upsertResult(r: { matchedCount: number; modifiedCount: number; upsertedCount: number; upsertedId: unknown }): UpdateResult {
  const out: UpdateResult = { matchedCount: r.matchedCount, modifiedCount: r.modifiedCount, upsertedCount: r.upsertedCount };
  if (r.upsertedId !== null && r.upsertedId !== undefined) out.upsertedId = r.upsertedId;
  return out;
}

// Reason for the `Document` casts below: the port's loose Doc/Filter types are the driver's at runtime.
class MongoCollection<T extends Doc = Doc> implements Collection<T> {
  constructor(private readonly c: DriverCollection<Document>) {}

  get name(): string {
    return this.c.collectionName;
  }

  insertOne(document: T): Promise<{ insertedId: unknown }> {
    return mapErrors(this.name, async () => ({ insertedId: (await this.c.insertOne(withId(document))).insertedId }));
  }

  insertMany(documents: T[], options?: { ordered?: boolean }): Promise<{ insertedCount: number }> {
    return mapErrors(this.name, async () => ({
      insertedCount: (await this.c.insertMany(documents.map(withId), { ordered: options?.ordered ?? true })).insertedCount,
    }));
  }

  findOne(filter: Filter, options?: FindOptions): Promise<T | null> {
    return this.c.findOne(filter, options) as Promise<T | null>;
  }

  find(filter: Filter, options?: FindOptions): Cursor<T> {
    return this.c.find(filter, options) as unknown as Cursor<T>;
  }

  updateOne(filter: Filter, update: Update, options?: UpdateOptions): Promise<UpdateResult> {
    return mapErrors(this.name, async () =>
      upsertResult(await this.c.updateOne(filter, withUpsertId(filter, update, options?.upsert), { upsert: options?.upsert ?? false })),
    );
  }

  updateMany(filter: Filter, update: Update, options?: UpdateOptions): Promise<UpdateResult> {
    return mapErrors(this.name, async () =>
      upsertResult(await this.c.updateMany(filter, withUpsertId(filter, update, options?.upsert), { upsert: options?.upsert ?? false })),
    );
  }

  replaceOne(filter: Filter, replacement: T, options?: UpdateOptions): Promise<UpdateResult> {
    const doc = options?.upsert && !('_id' in upsertSeed(filter)) ? withId(replacement) : replacement;
    return mapErrors(this.name, async () =>
      upsertResult(await this.c.replaceOne(filter, doc, { upsert: options?.upsert ?? false })),
    );
  }

  async deleteOne(filter: Filter): Promise<{ deletedCount: number }> {
    return { deletedCount: (await this.c.deleteOne(filter)).deletedCount };
  }

  async deleteMany(filter: Filter): Promise<{ deletedCount: number }> {
    return { deletedCount: (await this.c.deleteMany(filter)).deletedCount };
  }

  countDocuments(filter: Filter = {}): Promise<number> {
    return this.c.countDocuments(filter);
  }

  aggregate<R extends Doc = Doc>(pipeline: Doc[]): Cursor<R> {
    return this.c.aggregate(pipeline) as unknown as Cursor<R>;
  }

  bulkWrite(operations: BulkOperation<T>[], options?: { ordered?: boolean }): Promise<BulkWriteResult> {
    const ops = operations.map((op): AnyBulkWriteOperation<Document> => {
      if ('insertOne' in op) return { insertOne: { document: withId(op.insertOne.document) } };
      if ('updateOne' in op) {
        const { filter, update, upsert } = op.updateOne;
        return { updateOne: { filter, update: withUpsertId(filter, update, upsert), upsert: upsert ?? false } };
      }
      if ('updateMany' in op) {
        const { filter, update, upsert } = op.updateMany;
        return { updateMany: { filter, update: withUpsertId(filter, update, upsert), upsert: upsert ?? false } };
      }
      return op as AnyBulkWriteOperation<Document>;
    });
    return mapErrors(this.name, async () => {
      const r = await this.c.bulkWrite(ops, { ordered: options?.ordered ?? true });
      return {
        insertedCount: r.insertedCount,
        matchedCount: r.matchedCount,
        modifiedCount: r.modifiedCount,
        upsertedCount: r.upsertedCount,
        deletedCount: r.deletedCount,
      };
    });
  }

  createIndex(keys: Record<string, 1 | -1>, options: IndexOptions = {}): Promise<string> {
    return mapErrors(this.name, () => this.c.createIndex(keys, options));
  }
}

/** Connect to MongoDB at `url` and use database `dbName`. */
export async function createMongoStore(options: { url: string; dbName: string }): Promise<Store> {
  const client = new MongoClient(options.url, { serverSelectionTimeoutMS: 5_000 });
  await client.connect();
  const db = client.db(options.dbName);
  const collections = new Map<string, MongoCollection>();
  return {
    kind: 'mongodb',
    collection<T extends Doc = Doc>(name: string): Collection<T> {
      let collection = collections.get(name);
      if (!collection) {
        collection = new MongoCollection(db.collection(name));
        collections.set(name, collection);
      }
      // Reason for the cast: one untyped instance per name serves every typed view of it.
      return collection as unknown as Collection<T>;
    },
    async ping(): Promise<boolean> {
      try {
        await db.admin().command({ ping: 1 });
        return true;
      } catch {
        return false;
      }
    },
    close(): Promise<void> {
      return client.close();
    },
  };
}
