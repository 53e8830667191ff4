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

type Template = {
  parts: string[];
  names: string[];
  ssml: boolean;
  /** Each part as it reads inside a JSON string; undefined when joining escaped pieces could differ from escaping the whole. */
  jsonParts: string[] | undefined;
};
// Compiled once per spec object: the hot path only concatenates.
const templates = new WeakMap<BroadcastSpec, Template>();
const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;
/** What JSON.stringify escapes in a string (a lone surrogate too, so any surrogate counts). */
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;
/** A surrogate at either end of a part could pair with one across a join. */
const SURROGATE_AT_END = /^[\ud800-\udfff]|[\ud800-\udfff]$/;

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
  const joinable = parts.every((part) => !SURROGATE_AT_END.test(part));
  const jsonParts = joinable ? parts.map((part) => JSON.stringify(part).slice(1, -1)) : undefined;
  template = { parts, names, ssml: /^\s*<speak>/i.test(text), jsonParts };
  templates.set(spec, template);
  return template;
}

const escapeXml = (s: string): string =>
  s.replace(/[<>&'"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[ch] ?? ch);

/** The contact's value for `{{name}}`; unknown variables (inherited properties too) are the empty string. */
function valueOf(contact: ContactVars, name: string): string {
  const vars = contact.vars;
  const own = vars !== undefined && Object.hasOwn(vars, name) ? vars[name] : undefined;
  return (name === 'name' ? (contact.name ?? own) : own) ?? '';
}

/** Fill `{{name}}` and `{{anyVar}}`; unknown variables become the empty string. */
export function renderText(spec: BroadcastSpec, contact: ContactVars): string {
  return render(compile(spec), contact);
}

function render({ parts, names, ssml }: Template, contact: ContactVars): string {
  let out = parts[0] ?? '';
  for (let i = 0; i < names.length; i++) {
    const value = valueOf(contact, names[i] ?? '');
    out += (ssml ? escapeXml(value) : value) + (parts[i + 1] ?? '');
  }
  // Variables may lengthen the text past the Voice API limit, which would end the call.
  return out.length > MAX_TALK_CHARS ? out.slice(0, MAX_TALK_CHARS) : out;
}

/**
 * `JSON.stringify(render(template, contact))` from the parts escaped in advance, when no value needs
 * escaping and the text stays within the limit (JSON.stringify was the costliest step left per
 * answer); undefined otherwise, and the caller serialises the rendered text.
 */
function renderJson({ parts, names, ssml, jsonParts }: Template, contact: ContactVars): string | undefined {
  if (jsonParts === undefined) return undefined;
  let out = `"${jsonParts[0] ?? ''}`;
  let length = parts[0]?.length ?? 0;
  for (let i = 0; i < names.length; i++) {
    let value = valueOf(contact, names[i] ?? '');
    if (ssml) value = escapeXml(value);
    if (JSON_ESCAPED.test(value)) return undefined;
    length += value.length + (parts[i + 1]?.length ?? 0);
    out += value + (jsonParts[i + 1] ?? '');
  }
  return length > MAX_TALK_CHARS ? undefined : `${out}"`;
}

/** The language to speak in: the contact's, when it is a valid tag, else the broadcast's. */
export function languageFor(spec: BroadcastSpec, contact: ContactVars): string {
  const own = contact.language;
  if (own !== undefined && LANGUAGE_TAG.test(own)) return own;
  return spec.request.message.language ?? DEFAULT_LANGUAGE;
}

// Characters URLSearchParams leaves as they are: such values can be joined without it.
const URL_PLAIN = /^[A-Za-z0-9_.*-]*$/;

/** `b=…&c=…&a=…[&v=…][&r=…]` when URLSearchParams would leave every value as it is; else undefined. */
function plainQuery(ids: AttemptIds, v: string | undefined, round: number): string | undefined {
  const a = String(ids.a);
  const r = round > 0 ? String(round) : '';
  if (!URL_PLAIN.test(ids.b) || !URL_PLAIN.test(ids.c) || !URL_PLAIN.test(a) || !URL_PLAIN.test(r) || (v && !URL_PLAIN.test(v))) return undefined;
  return `b=${ids.b}&c=${ids.c}&a=${a}${v ? `&v=${v}` : ''}${r ? `&r=${r}` : ''}`;
}

function inputUrl(publicUrl: string, ids: AttemptIds, v: string | undefined, round: number): string {
  const plain = plainQuery(ids, v, round);
  if (plain !== undefined) return `${publicUrl}/webhooks/input?${plain}`;
  const query = new URLSearchParams({ b: ids.b, c: ids.c, a: String(ids.a) });
  if (v) query.set('v', v);
  if (round > 0) query.set('r', String(round));
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

// JSON of the answer NCCO around what varies per call, built once per (spec, language) from the same
// builders as answerNcco and cut at marked values. Per request only the text (when it has variables)
// is serialised; the input eventUrl's query is joined in as it is when it is URL-plain (then it needs
// no JSON escaping either), else the URL is serialised whole.
type AnswerJson = {
  template: Template;
  /** `[` and the message action: all of it when its text is the same for everyone, else up to the text. */
  head: string;
  /** The rest of the message action after the text; undefined when `head` holds all of it. */
  afterText: string | undefined;
  /** The prompt and the input action around its eventUrl; undefined without an acknowledgement. */
  prompt: { beforeUrl: string; afterUrl: string; urlHead: UrlHead | undefined } | undefined;
};
/** `["<publicUrl>/webhooks/input?` as JSON, the string left open for a plain query. */
type UrlHead = { publicUrl: string; json: string };

const answerJsonCache = new WeakMap<BroadcastSpec, Map<string, AnswerJson>>();
const MAX_LANGUAGES_PER_SPEC = 32;
const MARK = '\u0000mark\u0000';

/** JSON of `value` with `key` set to a mark, split around the mark: [before, after]. */
function framing(value: object, key: string): [string, string] {
  const [before = '', after = ''] = JSON.stringify({ ...value, [key]: MARK }).split(JSON.stringify(MARK));
  return [before, after];
}

function answerJson(spec: BroadcastSpec, language: string): AnswerJson {
  let byLanguage = answerJsonCache.get(spec);
  const cached = byLanguage?.get(language);
  if (cached) return cached;
  // A contact that makes languageFor() return `language`: the broadcast's own, or a valid contact tag.
  const probe: ContactVars = language === (spec.request.message.language ?? DEFAULT_LANGUAGE) ? {} : { language };
  const template = compile(spec);
  const [message] = messageActions(spec, probe);
  const constant = spec.request.message.audioUrl !== undefined || template.names.length === 0;
  const [talk, input] = promptActions(spec, probe, { b: 'b', c: 'c', a: 1 }, '', undefined);
  const text = framing(message ?? {}, 'text');
  const url = input ? framing(input, 'eventUrl') : undefined;
  const built: AnswerJson = {
    template,
    head: constant ? `[${JSON.stringify(message)}` : `[${text[0]}`,
    afterText: constant ? undefined : text[1],
    prompt: talk && url ? { beforeUrl: `,${JSON.stringify(talk)},${url[0]}`, afterUrl: `${url[1]}]`, urlHead: undefined } : undefined,
  };
  if (!byLanguage) answerJsonCache.set(spec, (byLanguage = new Map()));
  if (byLanguage.size < MAX_LANGUAGES_PER_SPEC) byLanguage.set(language, built);
  return built;
}

/** `JSON.stringify(answerNcco(...))`, byte for byte, without rebuilding and serialising the constant parts. */
export function answerNccoJson(spec: BroadcastSpec, contact: ContactVars, ids: AttemptIds, publicUrl: string, v: string | undefined): string {
  const json = answerJson(spec, languageFor(spec, contact));
  const message =
    json.afterText === undefined
      ? json.head
      : json.head + (renderJson(json.template, contact) ?? JSON.stringify(render(json.template, contact))) + json.afterText;
  const prompt = json.prompt;
  if (!prompt) return `${message}]`;
  const query = plainQuery(ids, v, 0);
  if (query === undefined) return `${message}${prompt.beforeUrl}${JSON.stringify([inputUrl(publicUrl, ids, v, 0)])}${prompt.afterUrl}`;
  let head = prompt.urlHead;
  if (head?.publicUrl !== publicUrl) {
    // A plain query has no character JSON escapes, so the URL's JSON is the prefix's JSON, left open, and the query.
    head = { publicUrl, json: `[${JSON.stringify(`${publicUrl}/webhooks/input?`).slice(0, -1)}` };
    prompt.urlHead = head;
  }
  return `${message}${prompt.beforeUrl}${head.json}${query}"]${prompt.afterUrl}`;
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
