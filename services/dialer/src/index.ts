export { createDialer, type Dialer, type DialerDeps, type DialerSettings, type DialerStats } from './dialer.js';
export { createApp, type AppDeps } from './app.js';
export { DialerEnv, loadDialerConfig } from './config.js';
export { msUntilWindowOpens } from './window.js';
export { webhookUrls } from './urls.js';
export type { LedgerEntry } from './ledger.js';
