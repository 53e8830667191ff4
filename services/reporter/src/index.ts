export { createReporter, type Reporter, type ReporterDeps } from './app.js';
export { Aggregation, Batcher, type ReportInput, type BatchResult } from './aggregate.js';
export { Reports, type Page, type Timeline } from './queries.js';
export { summarize, COLLECTIONS, type BroadcastSummary, type AttemptView, type ContactView, type BroadcastStatus } from './records.js';
export { ReporterConfigSchema, loadReporterConfig, type ReporterConfig } from './config.js';
export { benchAggregation, type AggregationBenchResult } from './bench.js';
export { openApiDocument } from './openapi.js';
