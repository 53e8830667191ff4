import { ConfigError, natsSettings } from '@clarion/config';
import { createLogger } from '@clarion/logging';
import { connectNats, ensureBuckets, ensureStreams, jetstream } from '@clarion/nats';
import { closeServer, listen, logShutdownEvents, onShutdown } from '@clarion/http';
import { createVoiceClient } from '@clarion/voice-client';
import { createApp } from './app.js';
import { loadDialerConfig } from './config.js';
import { createDialer } from './dialer.js';

const config = (() => {
  try {
    return loadDialerConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`dialer: ${error.message}\n`);
    process.exit(1);
  }
})();
const logger = createLogger({ service: 'dialer', level: config.LOG_LEVEL });

const nc = await connectNats(natsSettings(config, 'dialer'));
const replicas = { replicas: config.NATS_REPLICAS };
const jsm = await ensureStreams(nc, replicas);
// The call-slots bucket ends a leaked slot after CALL_SLOT_TIMEOUT_MS (nats-server 2.9 has no per-key TTL).
const buckets = await ensureBuckets(nc, { ...replicas, slotMaxAgeMs: config.CALL_SLOT_TIMEOUT_MS });
const voice = createVoiceClient({
  baseUrl: config.VOICE_API_URL,
  applicationId: config.VONAGE_APPLICATION_ID,
  privateKey: config.privateKey,
  timeoutMs: config.VOICE_API_TIMEOUT_MS,
});
const dialer = createDialer({
  nc,
  js: jetstream(nc),
  jsm,
  buckets,
  voice,
  logger,
  settings: {
    webhookPublicUrl: config.WEBHOOK_PUBLIC_URL,
    accountCps: config.ACCOUNT_CPS,
    accountMaxConcurrent: config.ACCOUNT_MAX_CONCURRENT,
    defaultFrom: config.DEFAULT_FROM,
    pacerSafetyFactor: config.PACER_SAFETY_FACTOR,
    pacerWindowGuard: config.PACER_WINDOW_GUARD,
    pacerWindowMarginMs: config.PACER_WINDOW_MARGIN_MS,
    // Every create is answered (or times out) within VOICE_API_TIMEOUT_MS; only a dead sender's is not.
    pacerOutstandingBoundMs: config.VOICE_API_TIMEOUT_MS + 1000,
    ambiguityTimeoutMs: config.AMBIGUITY_TIMEOUT_MS,
    claimGraceMs: config.CLAIM_GRACE_MS,
    callSlotTimeoutMs: config.CALL_SLOT_TIMEOUT_MS,
    breakerCooldownMs: config.BREAKER_COOLDOWN_MS,
    ringingTimerSeconds: config.RINGING_TIMER_SECONDS,
    lengthTimerSeconds: config.LENGTH_TIMER_SECONDS,
    ackWaitMs: config.ACK_WAIT_MS,
    retryBudget: config.RETRY_BUDGET,
    ...(config.ATTEMPT_RESULT_TIMEOUT_MS === undefined ? {} : { attemptResultTimeoutMs: config.ATTEMPT_RESULT_TIMEOUT_MS }),
    watchdogScanMs: config.WATCHDOG_SCAN_MS,
    statusRecheckMs: config.STATUS_RECHECK_MS,
    statusCheckLimit: config.STATUS_CHECK_LIMIT,
    ambiguousPlaceLimit: config.AMBIGUOUS_PLACE_LIMIT,
    outcomeSettleMs: config.OUTCOME_SETTLE_MS,
  },
});
await dialer.start();
const { app } = createApp({ dialer, nc, logger });
const server = await listen(app, config.PORT, config.HOST);
logger.info({ port: config.PORT }, 'listening');

// Stop pulling jobs and finish in-flight calls' bookkeeping, then close HTTP and drain NATS.
onShutdown({
  timeoutMs: 9_000,
  onEvent: logShutdownEvents(logger),
  steps: [
    { name: 'stop dialer', run: () => dialer.stop() },
    { name: 'close http', run: () => closeServer(server) },
    { name: 'drain nats', run: () => nc.drain() },
  ],
});
