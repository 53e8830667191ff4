import type { BroadcastRequest, FieldError } from '@clarion/contracts';
import { MAX_TALK_CHARS } from '@clarion/contracts';

const VARIABLE = /^\s*[A-Za-z_][A-Za-z0-9_.-]*\s*$/;
const ENTITY = /^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/;

/**
 * Check talk text that the webhook will put into an NCCO: `{{var}}` placeholders must be well
 * formed, and text wrapped in `<speak>` must be SSML that parses (balanced tags, escaped `&`),
 * with at most 1500 characters outside tags.
 */
export function checkTalkText(text: string, path: string): FieldError[] {
  const problems: FieldError[] = [];
  let rest = text;
  for (;;) {
    const open = rest.indexOf('{{');
    const close = rest.indexOf('}}');
    if (open < 0 && close < 0) break;
    if (open < 0 || (close >= 0 && close < open)) {
      problems.push({ path, message: 'has "}}" without a matching "{{"' });
      break;
    }
    const end = rest.indexOf('}}', open + 2);
    if (end < 0) {
      problems.push({ path, message: 'has "{{" without a matching "}}"' });
      break;
    }
    const name = rest.slice(open + 2, end);
    if (!VARIABLE.test(name)) problems.push({ path, message: `variable "{{${name}}}" must be a name of letters, digits, "_", "." or "-"` });
    rest = rest.slice(end + 2);
  }
  if (/^\s*<speak[\s>]/.test(text)) problems.push(...checkSsml(text, path));
  return problems;
}

function checkSsml(text: string, path: string): FieldError[] {
  const stack: string[] = [];
  let spoken = 0;
  for (let i = 0; i < text.length; ) {
    const ch = text[i];
    if (ch === '<') {
      const end = text.indexOf('>', i);
      if (end < 0) return [{ path, message: `SSML: "<" at character ${i + 1} is not closed; write &lt; for a literal "<"` }];
      const tag = text.slice(i + 1, end);
      const name = /^\/?([A-Za-z][\w:-]*)/.exec(tag)?.[1];
      if (!name || tag.includes('<')) {
        return [{ path, message: `SSML: malformed tag at character ${i + 1}; write &lt; for a literal "<"` }];
      }
      if (tag.startsWith('/')) {
        if (stack.pop() !== name) return [{ path, message: `SSML: closing </${name}> does not match an open tag` }];
      } else if (!tag.endsWith('/')) stack.push(name);
      i = end + 1;
    } else if (ch === '&') {
      if (!ENTITY.test(text.slice(i, i + 12))) return [{ path, message: `SSML: "&" at character ${i + 1} must be written &amp;` }];
      i = text.indexOf(';', i) + 1;
      spoken++;
    } else if (ch === '>') {
      return [{ path, message: `SSML: stray ">" at character ${i + 1}; write &gt;` }];
    } else {
      spoken++;
      i++;
    }
  }
  const problems: FieldError[] = [];
  if (stack.length > 0) problems.push({ path, message: `SSML: <${stack.join('>, <')}> not closed` });
  if (spoken > MAX_TALK_CHARS) problems.push({ path, message: `SSML: more than ${MAX_TALK_CHARS} characters outside tags` });
  return problems;
}

/** Every problem with the spoken parts of a request (the schema has checked types and lengths). */
export function checkMessage(request: BroadcastRequest): FieldError[] {
  const problems: FieldError[] = [];
  if (request.message.text !== undefined) problems.push(...checkTalkText(request.message.text, 'message.text'));
  if (request.acknowledgement) problems.push(...checkTalkText(request.acknowledgement.prompt, 'acknowledgement.prompt'));
  return problems;
}
