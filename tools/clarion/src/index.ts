export { startStack, REPO_ROOT, SERVICE_NAMES, DEFAULT_PORTS, type Stack, type StackOptions, type ServiceName } from './stack.js';
export { ensureDevSecrets, type DevSecrets } from './secrets.js';
export { restClient, requestBroadcast, controlBroadcast, connect, ApiError } from './client.js';
export { runDemo, checkGroundTruth, attemptOf, SAMPLE_CSV, type DemoSummary } from './demo.js';
