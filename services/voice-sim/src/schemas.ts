import { z } from 'zod';

/** `invalid_parameters` entries of a Vonage 400. */
export interface InvalidParameter {
  name: string;
  reason: string;
}

const TYPE_REASON = 'Invalid type parameter provided';
const urlArray = z.array(z.url({ protocol: /^https?$/, message: 'Invalid URL provided' }), { message: TYPE_REASON }).length(1, 'Must contain exactly one URL');

const PhoneEndpoint = z.object({
  type: z.literal('phone', { message: 'Only phone endpoints are supported' }),
  number: z.string({ message: TYPE_REASON }).regex(/^\d{7,15}$/, 'Must be 7-15 digits, E.164 without +'),
  dtmfAnswer: z.string().regex(/^[0-9#*p]+$/, 'Invalid DTMF string').optional(),
});

/** Settings of `advanced_machine_detection`; the beep_timeout minimum is configurable (30 or 45). */
const advancedMachineDetection = (beepMin: number) =>
  z.object({
    behavior: z.enum(['continue', 'hangup']).default('continue'),
    mode: z.enum(['default', 'detect', 'detect_beep']).default('detect'),
    beep_timeout: z.int({ message: TYPE_REASON }).min(beepMin, `Must be between ${beepMin} and 120`).max(120, `Must be between ${beepMin} and 120`).default(45),
  });

/** The body of `POST /v1/calls` as Vonage validates it. */
export function createCallSchema(options: { beepTimeoutMin: number; lengthTimerMax: number }) {
  return z
    .object({
      to: z.array(PhoneEndpoint, { message: TYPE_REASON }).length(1, 'Must contain exactly one endpoint'),
      from: z.object({ type: z.literal('phone'), number: z.string({ message: TYPE_REASON }).regex(/^\d{1,15}$/, 'Must be digits, without +') }, { message: TYPE_REASON }).optional(),
      random_from_number: z.boolean({ message: TYPE_REASON }).optional(),
      ncco: z.unknown().optional(),
      answer_url: urlArray.optional(),
      answer_method: z.enum(['GET', 'POST']).default('GET'),
      event_url: urlArray.optional(),
      event_method: z.enum(['GET', 'POST']).default('POST'),
      machine_detection: z.enum(['continue', 'hangup']).optional(),
      advanced_machine_detection: advancedMachineDetection(options.beepTimeoutMin).optional(),
      length_timer: z.int({ message: TYPE_REASON }).min(1, `Must be between 1 and ${options.lengthTimerMax}`).max(options.lengthTimerMax, `Must be between 1 and ${options.lengthTimerMax}`).default(7200),
      ringing_timer: z.int({ message: TYPE_REASON }).min(1, 'Must be between 1 and 120').max(120, 'Must be between 1 and 120').default(60),
    }, { message: 'Body must be a JSON object' })
    .superRefine((body, ctx) => {
      const hasFrom = body.from !== undefined;
      const random = body.random_from_number === true;
      if (hasFrom === random) {
        ctx.addIssue({ code: 'custom', path: ['from'], message: 'Exactly one of from and random_from_number is required' });
      }
      if ((body.ncco !== undefined) === (body.answer_url !== undefined)) {
        ctx.addIssue({ code: 'custom', path: ['answer_url'], message: 'Exactly one of ncco and answer_url is required' });
      }
      if (body.event_url === undefined) {
        ctx.addIssue({ code: 'custom', path: ['event_url'], message: 'Required: no event_url is set on the application' });
      }
      // The NCCO's actions are checked when the call plays (an error event), as Vonage does.
      if (body.ncco !== undefined && !Array.isArray(body.ncco)) {
        ctx.addIssue({ code: 'custom', path: ['ncco'], message: TYPE_REASON });
      }
    });
}
export type CreateCallBody = z.infer<ReturnType<typeof createCallSchema>>;

/** Turn zod issues into Vonage's `invalid_parameters` (`to[0].number`, `event_url`, …). */
export function invalidParameters(error: z.ZodError): InvalidParameter[] {
  return error.issues.map((issue) => {
    let name = '';
    for (const part of issue.path) name += typeof part === 'number' ? `[${part}]` : name ? `.${String(part)}` : String(part);
    return { name: name || 'body', reason: issue.message };
  });
}

/** `PUT /v1/calls/:uuid` body. */
export const ModifyCallBody = z.object({
  action: z.enum(['hangup', 'mute', 'unmute', 'earmuff', 'unearmuff', 'transfer'], { message: 'Invalid action' }),
  destination: z.unknown().optional(),
});

const dateQuery = z.iso.datetime({ offset: true, message: 'Must be an ISO 8601 date-time' }).optional();
/** `GET /v1/calls` query. */
export const ListCallsQuery = z.object({
  status: z.string().optional(),
  date_start: dateQuery,
  date_end: dateQuery,
  conversation_uuid: z.string().optional(),
  page_size: z.coerce.number().int().min(1).max(100).default(10),
  record_index: z.coerce.number().int().min(0).default(0),
  order: z.enum(['asc', 'desc']).default('asc'),
});

// ---- NCCO ----

const nccoUrlArray = z.array(z.string().min(1)).min(1);
const common = { bargeIn: z.boolean().optional(), loop: z.int().min(0).optional(), level: z.number().min(-1).max(1).optional() };

/** One NCCO action; `strict` is off because Vonage ignores options it does not use. */
export const NccoAction = z.discriminatedUnion('action', [
  z.object({ action: z.literal('talk'), text: z.string().min(1), language: z.string().optional(), style: z.int().optional(), premium: z.boolean().optional(), ...common }),
  z.object({ action: z.literal('stream'), streamUrl: nccoUrlArray, ...common }),
  z.object({
    action: z.literal('input'),
    type: z.array(z.enum(['dtmf', 'speech'])).min(1),
    dtmf: z.object({ timeOut: z.number().min(0).max(10).optional(), maxDigits: z.int().min(1).max(20).optional(), submitOnHash: z.boolean().optional() }).optional(),
    speech: z.record(z.string(), z.unknown()).optional(),
    eventUrl: nccoUrlArray.optional(),
    eventMethod: z.enum(['GET', 'POST']).optional(),
    mode: z.enum(['synchronous', 'asynchronous']).optional(),
  }),
  z.object({ action: z.literal('record'), timeOut: z.number().min(3).max(7200).optional(), endOnSilence: z.number().min(3).max(10).optional(), eventUrl: nccoUrlArray.optional(), eventMethod: z.enum(['GET', 'POST']).optional(), format: z.enum(['mp3', 'wav', 'ogg']).optional() }),
  z.object({ action: z.literal('notify'), payload: z.record(z.string(), z.unknown()), eventUrl: nccoUrlArray, eventMethod: z.enum(['GET', 'POST']).optional() }),
  z.object({ action: z.literal('connect'), endpoint: z.array(z.record(z.string(), z.unknown())).min(1).max(1), timeout: z.number().optional(), limit: z.number().max(7200).optional() }),
  z.object({ action: z.literal('wait'), timeout: z.number().min(0.1).max(7200).optional() }),
  z.object({ action: z.literal('conversation'), name: z.string().min(1) }),
]);
export type NccoAction = z.infer<typeof NccoAction>;

/** The text-length limit of a talk action (SSML tags excluded). */
export const MAX_TALK_TEXT = 1500;

/** Why an NCCO would be refused by Vonage (empty when valid). */
export function nccoProblems(ncco: unknown): string[] {
  if (!Array.isArray(ncco)) return ['NCCO must be a JSON array'];
  if (ncco.length === 0) return ['NCCO must not be empty'];
  const problems: string[] = [];
  const parsed: NccoAction[] = [];
  ncco.forEach((raw, i) => {
    const result = NccoAction.safeParse(raw);
    if (!result.success) {
      problems.push(`[${i}]: ${result.error.issues.map((x) => `${x.path.join('.') || 'action'} ${x.message}`).join(', ')}`);
      return;
    }
    parsed.push(result.data);
    const action = result.data;
    if (action.action === 'talk' && action.text.replace(/<[^>]*>/g, '').length > MAX_TALK_TEXT) problems.push(`[${i}]: talk text longer than ${MAX_TALK_TEXT} characters`);
    if ((action.action === 'talk' || action.action === 'stream') && action.bargeIn === true) {
      const next = ncco.slice(i + 1).find((a: unknown) => !['talk', 'stream'].includes((a as { action?: unknown })?.action as string));
      if ((next as { action?: unknown } | undefined)?.action !== 'input') problems.push(`[${i}]: bargeIn:true must be followed by an input action`);
    }
  });
  return problems;
}

/** Parse an NCCO that `nccoProblems` accepted. */
export function parseNcco(ncco: unknown): NccoAction[] | { problems: string[] } {
  const problems = nccoProblems(ncco);
  if (problems.length > 0) return { problems };
  return (ncco as unknown[]).map((a) => NccoAction.parse(a));
}
