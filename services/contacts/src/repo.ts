import type { ImportData } from '@clarion/contracts';
import { DuplicateKeyError, type Collection, type Doc, type Store } from '@clarion/store';

/** A contact list. */
export interface ListDoc extends Doc {
  _id: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

/** What a contact says about a person (without ids and bookkeeping). */
export interface ContactData {
  number: string;
  name?: string;
  country?: string;
  language?: string;
  timezone?: string;
  externalId?: string;
  vars: Record<string, string>;
  flagged: boolean;
}

/** One person of a list; `number` is E.164 and unique within the list (unique index). */
export interface ContactDoc extends Doc, ContactData {
  _id: string;
  listId: string;
  createdAt: string;
  updatedAt: string;
  /** The import that last wrote this contact, and its row there (duplicate reporting, replace mode). */
  importId?: string;
  importRow?: number;
}

/** A do-not-call number. */
export interface SuppressionDoc extends Doc {
  _id: string;
  number: string;
  source: 'api' | 'import' | 'keypress';
  reason?: string;
  broadcastId?: string;
  createdAt: string;
}

/** An import job and its report (progress while running). */
export interface ImportDoc extends Doc, ImportData {
  _id: string;
}


/** The collections of the contacts service. */
export interface Repos {
  lists: Collection<ListDoc>;
  contacts: Collection<ContactDoc>;
  suppressions: Collection<SuppressionDoc>;
  imports: Collection<ImportDoc>;
}

export function repos(store: Store): Repos {
  return {
    lists: store.collection<ListDoc>('lists'),
    contacts: store.collection<ContactDoc>('contacts'),
    suppressions: store.collection<SuppressionDoc>('suppressions'),
    imports: store.collection<ImportDoc>('imports'),
  };
}

/** Create the indexes the service relies on; the unique (listId, number) index is what keeps a list duplicate-free. */
export async function ensureIndexes(store: Store): Promise<void> {
  const r = repos(store);
  await r.contacts.createIndex({ listId: 1, number: 1 }, { unique: true, name: 'list_number_unique' });
  await r.contacts.createIndex({ listId: 1, _id: 1 }, { name: 'list_cursor' });
  await r.suppressions.createIndex({ number: 1 }, { unique: true, name: 'number_unique' });
  await r.imports.createIndex({ listId: 1, startedAt: -1 }, { name: 'list_imports' });
}

/** True for the duplicate-key error of either store implementation (or the raw MongoDB one). */
export function isDuplicateKey(error: unknown): boolean {
  return error instanceof DuplicateKeyError || (error as { code?: unknown } | null)?.code === 11000;
}
