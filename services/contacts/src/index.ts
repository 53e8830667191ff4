export { createContactsService, type ContactsDeps, type ContactsService } from './app.js';
export { loadContactsConfig, ConfigSchema, type Config } from './config.js';
export { ensureIndexes, repos, type ContactDoc, type ListDoc, type SuppressionDoc, type ImportDoc, type Repos } from './repo.js';
export { ensureContactsConsumers, startNatsHandlers, QUEUE } from './nats-handlers.js';
export { createBroadcast, controlBroadcast, parseRequest, checkLists, RequestError } from './broadcast.js';
export { checkTalkText } from './message-check.js';
export { detectDelimiter, mapColumns } from './columns.js';
