import { ConfigError, loadConfig, logLevel, port, readSecretFile, z } from '@clarion/config';

/** The outcomes voice-sim can play for a call (see README for the event sequences). */
export const SIM_OUTCOMES = [
  'answered_ack',
  'answered',
  'machine',
  'busy',
  'no_answer',
  'timeout',
  'failed',
  'rejected',
  'invalid_number',
  'cancelled',
] as const;
export const SimOutcome = z.enum(SIM_OUTCOMES);
export type SimOutcome = z.infer<typeof SimOutcome>;

const rate = z.number().min(0).max(1);

/** A per-number override: `match` is an exact number, a glob (`*`, `?`) or `/regex/`, without `+`. */
export const NumberOverride = z.strictObject({
  match: z.string().min(1),
  outcome: SimOutcome.optional(),
  /** Keys the simulated person presses at every `input` (answered_ack only). */
  digits: z.string().regex(/^[0-9#*]+$/).optional(),
  /** Simulated seconds from `ringing` to the answer (or to giving up). */
  ringSec: z.number().min(0).optional(),
  /** HTTP status returned by POST /v1/calls instead of placing the call (e.g. 500, 503). */
  createStatus: z.int().min(400).max(599).optional(),
  /** Place the call, then hang (`hang`) or reset (`reset`) the create request. */
  timeoutAfterPlace: z.enum(['hang', 'reset']).optional(),
});
export type NumberOverride = z.infer<typeof NumberOverride>;

/**
 * Runtime behaviour, changeable over `PUT /_sim/config`. `*Sec` values are simulated seconds
 * (multiplied by `timeScale`); `*Ms` values are real milliseconds (HTTP behaviour, never scaled).
 */
export const SimSettings = z.strictObject({
  /** Calls per second per account over a rolling second; 0 = unlimited. */
  cps: z.number().min(0).default(3),
  /** Requests per second for the other /v1 endpoints; 0 = unlimited. */
  otherRps: z.number().min(0).default(15),
  /** Multiplies every simulated delay; 0 plays calls instantly. */
  timeScale: z.number().min(0).default(1),
  seed: z.string().default('clarion'),
  /** Derive call uuids from the seed (repeatable runs); off by default so restarts never reuse a uuid. */
  deterministicIds: z.boolean().default(false),
  /** `last_digit` (documented rule) or `probability` (seeded table). */
  outcomeMode: z.enum(['last_digit', 'probability']).default('last_digit'),
  probabilities: z.partialRecord(SimOutcome, z.number().min(0)).default({ answered_ack: 0.5, answered: 0.1, machine: 0.1, busy: 0.1, no_answer: 0.1, failed: 0.05, rejected: 0.05 }),
  overrides: z.array(NumberOverride).default([]),
  /** Keys an `answered_ack` person presses when asked for input. */
  ackDigits: z.string().regex(/^[0-9#*]+$/).default('1'),
  durations: z
    .strictObject({
      ringDelaySec: z.number().min(0).default(1),
      answerDelaySec: z.number().min(0).default(4),
      noAnswerSec: z.number().min(0).default(30),
      busyDelaySec: z.number().min(0).default(3),
      failDelaySec: z.number().min(0).default(1),
      machineDetectSec: z.number().min(0).default(3),
      beepSec: z.number().min(0).default(10),
      keyDelaySec: z.number().min(0).default(1.5),
      speechCharsPerSec: z.number().positive().default(15),
      streamSec: z.number().min(0).default(5),
      actionSec: z.number().min(0).default(2),
    })
    .prefault({}),
  webhooks: z
    .strictObject({
      answerTimeoutMs: z.int().positive().default(5000),
      eventTimeoutMs: z.int().positive().default(10000),
      /** Attempts per URL for answer / input / notify (answer_url twice, then the fallback twice). */
      answerAttempts: z.int().min(1).default(2),
      /** Attempts for a plain status event (the first try plus one retry). */
      eventAttempts: z.int().min(1).default(2),
      /** The application's `fallback_answer_url`, if any. */
      fallbackAnswerUrl: z.string().optional(),
    })
    .prefault({}),
  validation: z
    .strictObject({
      beepTimeoutMin: z.union([z.literal(30), z.literal(45)]).default(45),
      lengthTimerMax: z.union([z.literal(7200), z.literal(86400)]).default(86400),
      /** `detail` of an unanswered event: `timeout` (docs) or `carrier_timeout` (Java SDK). */
      unansweredDetail: z.enum(['timeout', 'carrier_timeout']).default('timeout'),
      /** Hanging up sooner than this after creation gets 400, as Vonage does. */
      hangupGuardMs: z.int().min(0).default(2000),
    })
    .prefault({}),
  faults: z
    .strictObject({
      /** Real delay before answering POST /v1/calls. */
      createLatencyMs: z.int().min(0).default(0),
      create5xxRate: rate.default(0),
      create5xxStatus: z.int().min(500).max(599).default(500),
      /** Share of creates that place the call, then hang or reset the request. */
      timeoutAfterPlaceRate: rate.default(0),
      timeoutAfterPlaceMode: z.enum(['hang', 'reset']).default('hang'),
      /** How long a hung create request stays open before its socket is destroyed. */
      hangMs: z.int().min(0).default(30000),
      duplicateEventRate: rate.default(0),
      /** Share of events delivered late (after `delayEventMs`, so later events overtake them). */
      delayEventRate: rate.default(0),
      delayEventMs: z.int().min(0).default(0),
      /** Share of calls whose started/ringing and final-status/completed pairs are swapped. */
      reorderRate: rate.default(0),
    })
    .prefault({}),
});
export type SimSettings = z.infer<typeof SimSettings>;
export type SimSettingsInput = z.input<typeof SimSettings>;

const EnvSchema = z.object({
  PORT: port(3000),
  HOST: z.string().default('0.0.0.0'),
  VOICE_SIM_APPLICATION_ID: z.string({ message: 'required: the Vonage application id tokens must carry' }).min(1),
  VOICE_SIM_PUBLIC_KEY_FILE: z.string({ message: 'required: path to the application public key (PEM)' }).min(1),
  VOICE_SIM_CPS: z.coerce.number({ message: 'must be a number ≥ 0' }).min(0).default(3),
  VOICE_SIM_OTHER_RPS: z.coerce.number({ message: 'must be a number ≥ 0' }).min(0).default(15),
  VOICE_SIM_SIGNATURE_SECRET: z.string().optional(),
  VOICE_SIM_API_KEY: z.string().default('simkey'),
  VOICE_SIM_SEED: z.string().default('clarion'),
  VOICE_SIM_TIME_SCALE: z.coerce.number({ message: 'must be a number ≥ 0' }).min(0).default(1),
  VOICE_SIM_LOG_FILE: z.string().optional(),
  /** Optional JSON merged into the runtime settings (same shape as GET /_sim/config). */
  VOICE_SIM_CONFIG_JSON: z.string().optional(),
  LOG_LEVEL: logLevel,
});

/** Everything voice-sim needs to run. */
export interface VoiceSimConfig {
  port: number;
  host: string;
  applicationId: string;
  publicKeyPem: string;
  apiKey: string;
  signatureSecret?: string | undefined;
  logFile?: string | undefined;
  logLevel: string;
  sim: SimSettings;
}

/** Parse and validate the environment (reads the public key file). */
export function loadVoiceSimConfig(env: Record<string, string | undefined>): VoiceSimConfig {
  const e = loadConfig(EnvSchema, env);
  let extra: unknown = {};
  if (e.VOICE_SIM_CONFIG_JSON) {
    try {
      extra = JSON.parse(e.VOICE_SIM_CONFIG_JSON);
    } catch {
      throw new ConfigError([{ variable: 'VOICE_SIM_CONFIG_JSON', message: 'must be JSON' }]);
    }
  }
  const parsed = SimSettings.safeParse({
    ...(extra as object),
    cps: e.VOICE_SIM_CPS,
    otherRps: e.VOICE_SIM_OTHER_RPS,
    seed: e.VOICE_SIM_SEED,
    timeScale: e.VOICE_SIM_TIME_SCALE,
  });
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ variable: 'VOICE_SIM_CONFIG_JSON', message: `${i.path.join('.')}: ${i.message}` })));
  }
  return {
    port: e.PORT,
    host: e.HOST,
    applicationId: e.VOICE_SIM_APPLICATION_ID,
    publicKeyPem: readSecretFile(e.VOICE_SIM_PUBLIC_KEY_FILE, 'VOICE_SIM_PUBLIC_KEY_FILE'),
    apiKey: e.VOICE_SIM_API_KEY,
    signatureSecret: e.VOICE_SIM_SIGNATURE_SECRET,
    logFile: e.VOICE_SIM_LOG_FILE,
    logLevel: e.LOG_LEVEL,
    sim: parsed.data,
  };
}

/** Settings with every default filled in, from a partial input (tests, embedding). */
export function simSettings(input: SimSettingsInput = {}): SimSettings {
  return SimSettings.parse(input);
}
