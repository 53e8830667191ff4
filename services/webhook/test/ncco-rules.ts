// Vonage's NCCO rules as voice-api-facts.md §5/§8 state them. voice-sim owns the check that decides
// whether a call plays (nccoProblems); these stricter rules (BCP-47 language, http(s) URLs, known
// fields only) stay on top of it.
import { nccoProblems } from '@clarion/voice-sim';

const ACTIONS = new Set(['talk', 'stream', 'input', 'record', 'notify', 'connect', 'wait', 'conversation']);
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;
const ALLOWED: Record<string, Set<string>> = {
  talk: new Set(['action', 'text', 'language', 'style', 'premium', 'loop', 'level', 'bargeIn']),
  stream: new Set(['action', 'streamUrl', 'level', 'loop', 'bargeIn']),
  input: new Set(['action', 'type', 'dtmf', 'speech', 'eventUrl', 'eventMethod', 'mode']),
};

const isUrl = (u: unknown): boolean => {
  if (typeof u !== 'string') return false;
  try {
    return /^https?:$/.test(new URL(u).protocol);
  } catch {
    return false;
  }
};
const isInt = (n: unknown, min: number, max: number): boolean => Number.isInteger(n) && (n as number) >= min && (n as number) <= max;

/** Problems voice-sim or the stricter local rules find in the NCCO (empty when valid). */
export function validateNcco(ncco: unknown): string[] {
  return [...nccoProblems(ncco).map((p) => `voice-sim: ${p}`), ...localProblems(ncco)];
}

/** Problems Vonage would reject the NCCO for by the local rules (empty when valid). */
function localProblems(ncco: unknown): string[] {
  const problems: string[] = [];
  if (!Array.isArray(ncco)) return ['NCCO is not a JSON array'];
  if (ncco.length === 0) return ['NCCO is empty'];
  ncco.forEach((raw: unknown, i) => {
    const at = `[${i}]`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`${at} is not an object`);
      return;
    }
    const a = raw as Record<string, unknown>;
    if (typeof a.action !== 'string' || !ACTIONS.has(a.action)) {
      problems.push(`${at} unknown action ${String(a.action)}`);
      return;
    }
    const allowed = ALLOWED[a.action];
    if (allowed) for (const key of Object.keys(a)) if (!allowed.has(key)) problems.push(`${at} ${a.action} has unknown field ${key}`);
    if (a.action === 'talk') {
      if (typeof a.text !== 'string' || a.text.length === 0) problems.push(`${at} talk.text is required`);
      else if (a.text.replace(/<[^>]+>/g, '').length > 1500) problems.push(`${at} talk.text is over 1500 characters`);
      if (a.language !== undefined && (typeof a.language !== 'string' || !LANGUAGE.test(a.language))) problems.push(`${at} talk.language is not BCP-47`);
      if (a.style !== undefined && !isInt(a.style, 0, 100)) problems.push(`${at} talk.style must be an integer`);
      if (a.premium !== undefined && typeof a.premium !== 'boolean') problems.push(`${at} talk.premium must be boolean`);
    }
    if (a.action === 'stream') {
      if (!Array.isArray(a.streamUrl) || a.streamUrl.length !== 1 || !isUrl(a.streamUrl[0])) problems.push(`${at} stream.streamUrl must be an array with one URL`);
    }
    if (a.action === 'talk' || a.action === 'stream') {
      if (a.loop !== undefined && !isInt(a.loop, 0, 1000)) problems.push(`${at} ${a.action}.loop must be an integer ≥ 0`);
      if (a.level !== undefined && (typeof a.level !== 'number' || a.level < -1 || a.level > 1)) problems.push(`${at} level must be -1..1`);
      if (a.bargeIn !== undefined && typeof a.bargeIn !== 'boolean') problems.push(`${at} bargeIn must be boolean`);
      if (a.bargeIn === true) {
        const next = ncco.slice(i + 1).find((n: { action?: unknown }) => n?.action !== 'talk' && n?.action !== 'stream') as { action?: unknown } | undefined;
        if (next?.action !== 'input') problems.push(`${at} bargeIn:true is not followed by an input action`);
      }
    }
    if (a.action === 'input') {
      const types = a.type;
      if (!Array.isArray(types) || types.length === 0 || !types.every((t) => t === 'dtmf' || t === 'speech')) problems.push(`${at} input.type must be ["dtmf"] and/or ["speech"]`);
      if (a.dtmf !== undefined) {
        const d = a.dtmf as Record<string, unknown>;
        if (d.timeOut !== undefined && !isInt(d.timeOut, 0, 10)) problems.push(`${at} input.dtmf.timeOut must be 0-10`);
        if (d.maxDigits !== undefined && !isInt(d.maxDigits, 1, 20)) problems.push(`${at} input.dtmf.maxDigits must be 1-20`);
        if (d.submitOnHash !== undefined && typeof d.submitOnHash !== 'boolean') problems.push(`${at} input.dtmf.submitOnHash must be boolean`);
      }
      if (a.eventUrl !== undefined && (!Array.isArray(a.eventUrl) || a.eventUrl.length !== 1 || !isUrl(a.eventUrl[0]))) problems.push(`${at} input.eventUrl must be an array with one URL`);
      if (a.eventMethod !== undefined && a.eventMethod !== 'GET' && a.eventMethod !== 'POST') problems.push(`${at} input.eventMethod must be GET or POST`);
    }
  });
  return problems;
}
