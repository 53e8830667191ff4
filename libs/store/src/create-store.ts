/** Pick the store from configuration: MongoDB when a URL is given, otherwise embedded. */

import { createEmbeddedStore } from './embedded-store.js';
import { createMongoStore } from './mongo-store.js';
import type { Store } from './port.js';

/** MongoDB when `mongoUrl` is set (database `dbName`, default `clarion`), else embedded (journaled in `dir` if set). */
export function createStore(options: { mongoUrl?: string; dbName?: string; dir?: string }): Promise<Store> {
  if (options.mongoUrl) return createMongoStore({ url: options.mongoUrl, dbName: options.dbName ?? 'clarion' });
  return createEmbeddedStore(options.dir ? { dir: options.dir } : {});
}
