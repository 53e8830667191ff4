export * from './port.js';
export { createEmbeddedStore, StoreWriteError } from './embedded-store.js';
export { createMongoStore } from './mongo-store.js';
export { createStore } from './create-store.js';
export { benchStore } from './bench.js';
