import { flag, ConfigError, count, httpUrl, loadConfig, logLevel, natsVariables, port, positiveNumber, readSecretFile, z } from '@clarion/config';

/** Environment variables of the dialer; keys are the variable names so errors name them. */
export const DialerEnv = z.object({
  PORT: port(8082),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: logLevel,
  ...natsVariables,
  VOICE_API_URL: httpUrl().default('http://127.0.0.1:3000'),
  VONAGE_APPLICATION_ID: z.string({ message: 'is required (the Vonage application id)' }).min(1),
  VONAGE_PRIVATE_KEY_FILE: z.string().optional(),
  VONAGE_PRIVATE_KEY: z.string().optional(),
  WEBHOOK_PUBLIC_URL: httpUrl(),
  ACCOUNT_CPS: positiveNumber(3),
  /** Calls in progress at once, account-wide (all replicas share the count). */
  ACCOUNT_MAX_CONCURRENT: z.coerce.number({ message: 'must be a whole number ≥ 1' }).int('must be a whole number ≥ 1').min(1, 'must be a whole number ≥ 1').default(1000),
  DEFAULT_FROM: z
    .string()
    .regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 number such as +14155550100')
    .optional(),
  /** Spacing multiplier on 1000/CPS so jitter never pushes a rolling second above the limit. */
  PACER_SAFETY_FACTOR: z.coerce.number().min(1).max(2).default(1.02),
  /**
   * Also hold each start until the ⌊ACCOUNT_CPS⌋-th latest create request before it was answered a
   * second (plus the margin) earlier, so a start that ran late cannot crowd an on-time one into the
   * provider's rolling second. Applies up to 100 calls per second.
   */
  PACER_WINDOW_GUARD: flag(true),
  PACER_WINDOW_MARGIN_MS: count(5),
  /** With no event for this long, an ambiguous create surely did not place a call. */
  AMBIGUITY_TIMEOUT_MS: count(60_000),
  /**
   * A claim younger than this (counted from its send, if it was sent) may belong to a worker still waiting
   * for the pacer or placing the call. Older: an unsent claim is taken over, a sent one becomes ambiguous.
   * Must be longer than VOICE_API_TIMEOUT_MS.
   */
  CLAIM_GRACE_MS: count(45_000),
  /** After a final-looking status, wait this long for stragglers (a failure after `completed`, a late keypress). */
  OUTCOME_SETTLE_MS: count(3_000),
  /** A call slot is released after this long even if no final event arrived (also the call-slots bucket's max age). */
  CALL_SLOT_TIMEOUT_MS: z.coerce.number({ message: 'must be a whole number of ms ≥ 1000' }).int('must be a whole number of ms ≥ 1000').min(1000, 'must be a whole number of ms ≥ 1000').default(15 * 60_000),
  /** How long the account breaker stays open after 401/402/403. */
  BREAKER_COOLDOWN_MS: count(60_000),
  RINGING_TIMER_SECONDS: z.coerce.number().int().min(1).max(120).default(45),
  LENGTH_TIMER_SECONDS: z.coerce.number().int().min(1).max(86_400).default(600),
  VOICE_API_TIMEOUT_MS: count(10_000),
  /** Ack wait of the dial consumers: how soon a crashed replica's jobs are redelivered. */
  ACK_WAIT_MS: z.coerce.number().int().min(2000).max(600_000).default(30_000),
  /** 429s and unreachable-API re-queues one job may take before it is given up as `failed`. */
  RETRY_BUDGET: count(20),
  /** A placed call with no final event for this long is checked with the Voice API; default ringing + length timers + 60 s. */
  ATTEMPT_RESULT_TIMEOUT_MS: z.coerce.number().int().min(1000).optional(),
  /** How often each replica scans the call ledger of known broadcasts for overdue attempts. */
  WATCHDOG_SCAN_MS: z.coerce.number().int().min(500).default(30_000),
  /** Wait between status checks of a call still in progress (or that the API could not report). */
  STATUS_RECHECK_MS: z.coerce.number().int().min(500).default(60_000),
  /** Status checks before an overdue attempt ends `unknown`. */
  STATUS_CHECK_LIMIT: z.coerce.number().int().min(1).max(100).default(5),
  /** Creates of one attempt that may stay ambiguous before it ends `failed` (retry policy applies) rather than re-placed. */
  AMBIGUOUS_PLACE_LIMIT: z.coerce.number().int().min(1).max(20).default(3),
});
export type DialerEnv = z.infer<typeof DialerEnv>;

/** Parse the environment; the private key comes from VONAGE_PRIVATE_KEY or the file (never logged). */
export function loadDialerConfig(env: Record<string, string | undefined>): DialerEnv & { privateKey: string } {
  const config = loadConfig(DialerEnv, env);
  if (config.CLAIM_GRACE_MS <= config.VOICE_API_TIMEOUT_MS) {
    // A claim whose create is still in flight must not be declared ambiguous by another replica.
    throw new ConfigError([{ variable: 'CLAIM_GRACE_MS', message: `must be longer than VOICE_API_TIMEOUT_MS (${config.VOICE_API_TIMEOUT_MS} ms)` }]);
  }
  let privateKey = config.VONAGE_PRIVATE_KEY?.replace(/\\n/g, '\n');
  if (privateKey === undefined && config.VONAGE_PRIVATE_KEY_FILE !== undefined) {
    privateKey = readSecretFile(config.VONAGE_PRIVATE_KEY_FILE, 'VONAGE_PRIVATE_KEY_FILE');
  }
  if (privateKey === undefined || !privateKey.includes('PRIVATE KEY')) {
    throw new ConfigError([
      {
        variable: privateKey === undefined ? 'VONAGE_PRIVATE_KEY_FILE' : 'VONAGE_PRIVATE_KEY',
        message: privateKey === undefined ? 'set VONAGE_PRIVATE_KEY_FILE or VONAGE_PRIVATE_KEY (PEM)' : 'must be a PEM private key',
      },
    ]);
  }
  return { ...config, privateKey };
}
