export { createWebhookApp, meaningOf, type WebhookApp, type WebhookDeps, type WebhookSettings } from './app.js';
export { loadWebhookConfig, WebhookConfigSchema, type WebhookConfig } from './config.js';
export * from './ncco.js';
export { normaliseCallEvent, callEventMsgId, EventPayloadError } from './normalise.js';
export { verifyWebhookSignature, payloadHash, signatureKey, type RefusalReason, type SignatureCheck } from './signature.js';
export { createSpecCache, type SpecCache, type SpecCacheEvent } from './spec-cache.js';
export { benchAnswerWebhook, type AnswerBenchOptions, type AnswerBenchResult, type LoadFigures, type SaturationFigures } from './bench.js';
