import { MAX_TALK_CHARS, type BroadcastSpec, type ContactVars } from '@clarion/contracts';

/** The NCCO actions this service emits (a subset of Vonage's, camelCase as the API wants). */
export type TalkAction = {
  action: 'talk';
  text: string;
  language: string;
  style: number;
  loop?: number;
  bargeIn?: boolean;
};
export type StreamAction = { action: 'stream'; streamUrl: [string]; loop?: number; bargeIn?: boolean };
export type InputAction = {
  action: 'input';
  type: ['dtmf'];
  dtmf: { maxDigits: number; timeOut: number };
  eventUrl: [string];
  eventMethod: 'POST';
};
export type NccoAction = TalkAction | StreamAction | InputAction;
export type Ncco = NccoAction[];

/** The identity of one attempt, carried in every webhook URL. */
export interface AttemptIds {
  b: string;
  c: string;
  a: number;
}

const LANGUAGE_TAG = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;
const DEFAULT_LANGUAGE = 'en-US';

type Template = { parts: string[]; names: string[]; ssml: boolean };
// Compiled once per spec object: the hot path only concatenates.
const templates = new WeakMap<BroadcastSpec, Template>();
const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

function compile(spec: BroadcastSpec): Template {
  let template = templates.get(spec);
  if (template) return template;
  const text = spec.request.message.text ?? '';
  const parts: string[] = [];
  const names: string[] = [];
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    parts.push(text.slice(last, match.index));
    names.push(match[1] ?? '');
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  template = { parts, names, ssml: /^\s*<speak>/i.test(text) };
  templates.set(spec, template);
  return template;
}

const escapeXml = (s: string): string =>
  s.replace(/[<>&'"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[ch] ?? ch);

/** Fill `{{name}}` and `{{anyVar}}`; unknown variables become the empty string. */
export function renderText(spec: BroadcastSpec, contact: ContactVars): string {
  const { parts, names, ssml } = compile(spec);
  let out = parts[0] ?? '';
  for (let i = 0; i < names.length; i++) {
    const name = names[i] ?? '';
    let value = name === 'name' ? (contact.name ?? contact.vars?.name) : contact.vars?.[name];
    value ??= '';
    out += (ssml ? escapeXml(value) : value) + (parts[i + 1] ?? '');
  }
  // Variables may lengthen the text past the Voice API limit, which would end the call.
  return out.length > MAX_TALK_CHARS ? out.slice(0, MAX_TALK_CHARS) : out;
}

/** The language to speak in: the contact's, when it is a valid tag, else the broadcast's. */
export function languageFor(spec: BroadcastSpec, contact: ContactVars): string {
  const own = contact.language;
  if (own !== undefined && LANGUAGE_TAG.test(own)) return own;
  return spec.request.message.language ?? DEFAULT_LANGUAGE;
}

// Characters URLSearchParams leaves as they are: such values can be joined without it.
const URL_PLAIN = /^[A-Za-z0-9_.*-]*$/;

function inputUrl(publicUrl: string, ids: AttemptIds, v: string | undefined, round: number): string {
  const a = String(ids.a);
  const r = round > 0 ? String(round) : '';
  if (URL_PLAIN.test(ids.b) && URL_PLAIN.test(ids.c) && URL_PLAIN.test(a) && URL_PLAIN.test(r) && (!v || URL_PLAIN.test(v))) {
    return `${publicUrl}/webhooks/input?b=${ids.b}&c=${ids.c}&a=${a}${v ? `&v=${v}` : ''}${r ? `&r=${r}` : ''}`;
  }
  const query = new URLSearchParams({ b: ids.b, c: ids.c, a });
  if (v) query.set('v', v);
  if (r) query.set('r', r);
  return `${publicUrl}/webhooks/input?${query.toString()}`;
}

/** The message itself: `talk` (text with variables) or `stream` (audio), looped `repeat` times. */
export function messageActions(spec: BroadcastSpec, contact: ContactVars): NccoAction[] {
  const message = spec.request.message;
  const loop = message.repeat ?? 1;
  if (message.audioUrl !== undefined) return [{ action: 'stream', streamUrl: [message.audioUrl], loop }];
  return [{ action: 'talk', text: renderText(spec, contact), language: languageFor(spec, contact), style: message.style ?? 0, loop }];
}

/** The "press 1 to confirm" prompt (interruptible) and the DTMF input that posts to /webhooks/input. */
export function promptActions(
  spec: BroadcastSpec,
  contact: ContactVars,
  ids: AttemptIds,
  publicUrl: string,
  v: string | undefined,
  round = 0,
): NccoAction[] {
  const ack = spec.request.acknowledgement;
  if (!ack) return [];
  return [
    { action: 'talk', text: ack.prompt, language: languageFor(spec, contact), style: spec.request.message.style ?? 0, bargeIn: true },
    {
      action: 'input',
      type: ['dtmf'],
      dtmf: { maxDigits: 1, timeOut: ack.timeoutSeconds },
      eventUrl: [inputUrl(publicUrl, ids, v, round)],
      eventMethod: 'POST',
    },
  ];
}

/** The answer NCCO: the message, then the acknowledgement prompt when the broadcast asks for one. */
export function answerNcco(spec: BroadcastSpec, contact: ContactVars, ids: AttemptIds, publicUrl: string, v: string | undefined): Ncco {
  return [...messageActions(spec, contact), ...promptActions(spec, contact, ids, publicUrl, v)];
}

// JSON of the answer NCCO parts that do not depend on the contact's variables or the attempt, built
// once per (spec, language) from the same builders as answerNcco and cut at marked values; per
// request only the text (when it has variables) and the input eventUrl are serialised.
type AnswerFragments = {
  /** The whole message action when its text is the same for everyone; else `talk` frames the text. */
  message: string | undefined;
  talk: [string, string];
  prompt: { talk: string; input: [string, string] } | undefined;
};
const fragments = new WeakMap<BroadcastSpec, Map<string, AnswerFragments>>();
const MAX_LANGUAGES_PER_SPEC = 32;
const MARK = '\u0000mark\u0000';

/** JSON of `value` with `key` set to a mark, split around the mark: [before, after]. */
function framing(value: object, key: string): [string, string] {
  const [before = '', after = ''] = JSON.stringify({ ...value, [key]: MARK }).split(JSON.stringify(MARK));
  return [before, after];
}

function answerFragments(spec: BroadcastSpec, language: string): AnswerFragments {
  let byLanguage = fragments.get(spec);
  const cached = byLanguage?.get(language);
  if (cached) return cached;
  // A contact that makes languageFor() return `language`: the broadcast's own, or a valid contact tag.
  const probe: ContactVars = language === (spec.request.message.language ?? DEFAULT_LANGUAGE) ? {} : { language };
  const [message] = messageActions(spec, probe);
  const constant = spec.request.message.audioUrl !== undefined || compile(spec).names.length === 0;
  const [talk, input] = promptActions(spec, probe, { b: 'b', c: 'c', a: 1 }, '', undefined);
  const built: AnswerFragments = {
    message: constant ? JSON.stringify(message) : undefined,
    talk: framing(message ?? {}, 'text'),
    prompt: talk && input ? { talk: JSON.stringify(talk), input: framing(input, 'eventUrl') } : undefined,
  };
  if (!byLanguage) fragments.set(spec, (byLanguage = new Map()));
  if (byLanguage.size < MAX_LANGUAGES_PER_SPEC) byLanguage.set(language, built);
  return built;
}

/** `JSON.stringify(answerNcco(...))`, byte for byte, without rebuilding and serialising the constant parts. */
export function answerNccoJson(spec: BroadcastSpec, contact: ContactVars, ids: AttemptIds, publicUrl: string, v: string | undefined): string {
  const parts = answerFragments(spec, languageFor(spec, contact));
  const message = parts.message ?? `${parts.talk[0]}${JSON.stringify(renderText(spec, contact))}${parts.talk[1]}`;
  if (!parts.prompt) return `[${message}]`;
  const { talk, input } = parts.prompt;
  return `[${message},${talk},${input[0]}${JSON.stringify([inputUrl(publicUrl, ids, v, 0)])}${input[1]}]`;
}

/** A single spoken sentence. */
export function sayNcco(text: string, language = DEFAULT_LANGUAGE, style = 0): Ncco {
  return [{ action: 'talk', text, language, style }];
}

export const TEXTS = {
  apology: 'Sorry, this message is no longer available.',
  confirmed: 'Thank you, your confirmation is recorded.',
  optedOut: 'You will not be called with these messages again. Goodbye.',
  goodbye: 'Goodbye.',
} as const;
