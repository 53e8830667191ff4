import { z } from 'zod';

/** Ids travel in subjects, KV keys and URLs: letters, digits, `_` and `-` only. */
export const Id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"');
/** E.164 with the leading `+`, as every service stores numbers. */
export const E164 = z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 number such as +14155550100');
const IsoTime = z.iso.datetime({ offset: true });
const Clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24-hour)');
const TimeZone = z.string().refine(isTimeZone, 'must be an IANA time zone such as Europe/London');

/** Answers per spelling: building a DateTimeFormat costs ~0.3 ms, and every dial job may carry a zone. */
const timeZones = new Map<string, boolean>();

/** Whether `tz` is an IANA time zone this runtime knows (remembered per spelling, bounded). */
export function isTimeZone(tz: string | undefined): tz is string {
  if (!tz) return false;
  let known = timeZones.get(tz);
  if (known === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      known = true;
    } catch {
      known = false;
    }
    // Bounded: a stream of junk zones must not grow it for ever.
    if (timeZones.size < 10_000) timeZones.set(tz, known);
  }
  return known;
}

/** One outcome per call attempt (DESIGN.md §4). */
export const ATTEMPT_OUTCOMES = [
  'acknowledged',
  'answered',
  'voicemail',
  'busy',
  'no_answer',
  'rejected',
  'failed',
  'invalid_number',
  'unknown',
] as const;
export const AttemptOutcome = z.enum(ATTEMPT_OUTCOMES);
export type AttemptOutcome = z.infer<typeof AttemptOutcome>;

/** Outcomes a broadcast may retry. */
export const RetryableOutcome = z.enum(['busy', 'no_answer', 'failed', 'voicemail', 'answered', 'rejected', 'unknown']);

/** One final state per contact of a broadcast (DESIGN.md §4). */
export const FINAL_STATES = [
  ...ATTEMPT_OUTCOMES,
  'suppressed',
  'duplicate',
  'expired',
  'cancelled',
  'outside_window',
] as const;
export const FinalState = z.enum(FINAL_STATES);
export type FinalState = z.infer<typeof FinalState>;

/** A phone number as written; a JSON number (14155550100) is read as its digits. */
const WrittenNumber = z.union([z.string().max(100), z.number().int().nonnegative().transform(String)]);

/**
 * An audience member named inline in a request. A junk entry (empty, too short, `null`) does not
 * reject the request: it is counted as invalid and everyone else is called.
 */
export const InlineContact = z.union([
  WrittenNumber,
  z.null(),
  z.strictObject({
    number: WrittenNumber,
    name: z.string().max(200).optional(),
    country: z.string().max(40).optional(),
    timezone: TimeZone.optional(),
    language: z.string().max(20).optional(),
    vars: z.record(z.string().max(64), z.string().max(500)).optional(),
  }),
]);

const LANGUAGE = z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a BCP-47 tag such as en-GB');

/** Talk text limit of the Voice API (characters, SSML excluded). */
export const MAX_TALK_CHARS = 1500;

/** What an operator asks for (DESIGN.md §3). Field names are documented in README.md. */
export const BroadcastRequest = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    idempotencyKey: z.string().min(1).max(200).optional(),
    message: z
      .strictObject({
        text: z.string().trim().min(1).max(MAX_TALK_CHARS).optional(),
        audioUrl: z.url({ protocol: /^https?$/ }).optional(),
        language: LANGUAGE.default('en-US'),
        style: z.int().min(0).max(20).default(0),
        repeat: z.int().min(1).max(10).default(1),
      })
      .refine((m) => (m.text === undefined) !== (m.audioUrl === undefined), {
        message: 'give exactly one of message.text or message.audioUrl',
      }),
    audience: z
      .strictObject({
        listIds: z.array(Id).max(100).default([]),
        numbers: z.array(InlineContact).max(100_000).default([]),
        defaultCountry: z
          .string()
          .regex(/^[A-Z]{2}$/, 'must be an ISO 3166 alpha-2 code such as US')
          .default('US'),
      })
      .refine((a) => a.listIds.length + a.numbers.length > 0, {
        message: 'name at least one list id or number',
      }),
    from: z
      .string()
      .regex(/^\+?[1-9]\d{6,14}$/, 'must be a number in E.164 form such as +14155550100')
      .optional(),
    acknowledgement: z
      .strictObject({
        prompt: z.string().trim().min(1).max(500).default('Press 1 to confirm you have received this message.'),
        key: z.string().regex(/^[0-9*#]$/).default('1'),
        repeatKey: z.string().regex(/^[0-9*#]$/).optional(),
        optOutKey: z.string().regex(/^[0-9*#]$/).optional(),
        timeoutSeconds: z.int().min(1).max(10).default(5),
      })
      .optional(),
    machine: z
      .strictObject({
        action: z.enum(['leave_message', 'hangup']).default('leave_message'),
        countAs: z.enum(['reached', 'retry']).default('reached'),
      })
      .default({ action: 'leave_message', countAs: 'reached' }),
    retry: z
      .strictObject({
        maxAttempts: z.int().min(1).max(10).default(3),
        delaySeconds: z.number().min(0).max(86_400).default(300),
        on: z.array(RetryableOutcome).default(['busy', 'no_answer', 'failed']),
      })
      .default({ maxAttempts: 3, delaySeconds: 300, on: ['busy', 'no_answer', 'failed'] }),
    pacing: z
      .strictObject({
        callsPerSecond: z.number().positive().max(1000).optional(),
        maxConcurrent: z.int().min(1).max(100_000).optional(),
      })
      .default({}),
    window: z
      .strictObject({
        start: Clock,
        end: Clock,
        days: z.array(z.int().min(1).max(7)).min(1).default([1, 2, 3, 4, 5, 6, 7]),
        timezone: TimeZone.default('UTC'),
        override: z.boolean().default(false),
      })
      .optional(),
    expiresAt: IsoTime.optional(),
    priority: z.enum(['critical', 'normal']).default('normal'),
  });
export type BroadcastRequestInput = z.input<typeof BroadcastRequest>;
export type BroadcastRequest = z.infer<typeof BroadcastRequest>;

export const BroadcastCounts = z.strictObject({
  accepted: z.int().min(0),
  invalid: z.int().min(0),
  duplicate: z.int().min(0),
  suppressed: z.int().min(0),
});
export type BroadcastCounts = z.infer<typeof BroadcastCounts>;

/** A field-level problem in a request. */
export const FieldError = z.strictObject({ path: z.string(), message: z.string() });
export type FieldError = z.infer<typeof FieldError>;

export const ErrorBody = z.strictObject({
  code: z.string(),
  message: z.string(),
  details: z.array(FieldError).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Reply to `broadcast.request`. */
export const BroadcastReply = z.union([
  z.strictObject({
    ok: z.literal(true),
    broadcastId: Id,
    created: z.boolean(),
    counts: BroadcastCounts,
    invalid: z.array(z.strictObject({ input: z.string(), reason: z.string() })),
  }),
  z.strictObject({ ok: z.literal(false), error: ErrorBody }),
]);
export type BroadcastReply = z.infer<typeof BroadcastReply>;

/** The stored, validated broadcast: what dialer and webhook read from KV. */
export const BroadcastSpec = z.strictObject({
  id: Id,
  createdAt: IsoTime,
  request: BroadcastRequest,
  /** Filled in once the whole audience is enqueued; absent while enqueueing. */
  counts: BroadcastCounts.optional(),
});
export type BroadcastSpec = z.infer<typeof BroadcastSpec>;

export const ControlAction = z.enum(['pause', 'resume', 'cancel']);
export type ControlAction = z.infer<typeof ControlAction>;

/** Request on `broadcast.control`. */
export const BroadcastControlRequest = z.strictObject({
  broadcastId: Id,
  action: ControlAction,
  reason: z.string().max(500).optional(),
});
export type BroadcastControlRequest = z.infer<typeof BroadcastControlRequest>;

/** What every dialer replica watches in the control bucket. */
export const BroadcastControlState = z.strictObject({
  broadcastId: Id,
  status: z.enum(['running', 'paused', 'cancelled', 'halted']),
  reason: z.string().optional(),
  at: IsoTime,
});
export type BroadcastControlState = z.infer<typeof BroadcastControlState>;

/** One call to place: published by contacts (attempt 1) and by the dialer (retries). */
export const DialJob = z.strictObject({
  broadcastId: Id,
  contactId: Id,
  number: E164,
  attempt: z.int().min(1).max(10),
  name: z.string().max(200).optional(),
  timezone: z.string().max(64).optional(),
  language: z.string().max(20).optional(),
  vars: z.record(z.string(), z.string()).optional(),
  /** Epoch ms before which this job must not be dialled (retries). */
  notBefore: z.number().int().min(0).optional(),
});
export type DialJob = z.infer<typeof DialJob>;

export const BroadcastEvent = z.strictObject({
  kind: z.literal('broadcast'),
  broadcastId: Id,
  type: z.enum(['created', 'enqueued', 'paused', 'resumed', 'cancelled', 'halted', 'expired']),
  at: IsoTime,
  name: z.string().optional(),
  priority: z.enum(['critical', 'normal']).optional(),
  counts: BroadcastCounts.optional(),
  reason: z.string().optional(),
  /** On `created`/`enqueued`: whether people are asked to confirm with a key (so a confirmation rate means something). */
  acknowledgement: z.boolean().optional(),
});
export type BroadcastEvent = z.infer<typeof BroadcastEvent>;

/** What the dialer did with one attempt. */
export const AttemptEvent = z.strictObject({
  kind: z.literal('attempt'),
  broadcastId: Id,
  contactId: Id,
  attempt: z.int().min(1),
  number: E164,
  phase: z.enum(['placed', 'refused', 'ambiguous', 'outcome']),
  at: IsoTime,
  uuid: z.string().optional(),
  outcome: AttemptOutcome.optional(),
  reason: z.string().optional(),
  /** For `outcome`: epoch ms when the next attempt becomes due, if one is scheduled. */
  retryAt: z.number().int().optional(),
});
export type AttemptEvent = z.infer<typeof AttemptEvent>;

/** The single final state of one contact in one broadcast. */
export const ContactFinal = z.strictObject({
  kind: z.literal('contact'),
  broadcastId: Id,
  contactId: Id,
  number: z.string().optional(),
  state: FinalState,
  attempts: z.int().min(0),
  at: IsoTime,
  reason: z.string().optional(),
  /**
   * A correction: a late provider event proved a better outcome for an attempt already settled, so
   * the contact's final state moves from `supersedes` to `state` (only ever forwards).
   */
  supersedes: FinalState.optional(),
});
export type ContactFinal = z.infer<typeof ContactFinal>;

/** A Voice API webhook event, normalised by the webhook service. `status` keeps unknown values raw. */
export const CallEvent = z.strictObject({
  kind: z.literal('call'),
  broadcastId: Id,
  contactId: Id,
  attempt: z.int().min(1),
  uuid: z.string().min(1).max(100),
  conversationUuid: z.string().optional(),
  /** Voice API status (`started`, `answered`, `human`, …), `input` for DTMF, `error` for an error event. */
  status: z.string().min(1).max(64),
  detail: z.string().optional(),
  subState: z.string().optional(),
  /** Provider timestamp (ISO); equal timestamps are possible. */
  timestamp: IsoTime,
  receivedAt: IsoTime,
  digits: z.string().optional(),
  duration: z.number().optional(),
  price: z.number().optional(),
  rate: z.number().optional(),
  sipCode: z.number().optional(),
  reason: z.string().optional(),
  raw: z.record(z.string(), z.unknown()),
});
export type CallEvent = z.infer<typeof CallEvent>;

/** A key pressed during a call, interpreted against the broadcast's acknowledgement settings. */
export const KeypressEvent = z.strictObject({
  kind: z.literal('keypress'),
  broadcastId: Id,
  contactId: Id,
  attempt: z.int().min(1),
  uuid: z.string(),
  number: z.string().optional(),
  meaning: z.enum(['acknowledge', 'opt_out', 'repeat', 'other', 'none']),
  digits: z.string().nullable(),
  at: IsoTime,
});
export type KeypressEvent = z.infer<typeof KeypressEvent>;

/** Everything on the EVENTS stream. */
export const StreamEvent = z.discriminatedUnion('kind', [BroadcastEvent, AttemptEvent, ContactFinal, CallEvent, KeypressEvent]);
export type StreamEvent = z.infer<typeof StreamEvent>;
