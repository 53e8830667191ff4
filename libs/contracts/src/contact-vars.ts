import { z } from 'zod';

/** What the dialer packs into a webhook URL's `v` for each contact (base64url JSON); unknown keys are ignored. */
export const ContactVars = z.object({
  name: z.string().max(200).optional(),
  language: z.string().max(20).optional(),
  vars: z.record(z.string(), z.string().max(2000)).optional(),
});
export type ContactVars = z.infer<typeof ContactVars>;

/** Encode contact variables for the `v` query parameter (base64url of the JSON). */
export function encodeContactVars(vars: ContactVars): string {
  return Buffer.from(JSON.stringify(vars), 'utf8').toString('base64url');
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const optionalString = (value: unknown, max: number): boolean => value === undefined || (typeof value === 'string' && value.length <= max);

/**
 * `ContactVars.safeParse` by hand: this runs on every answer webhook, where the schema's generic
 * machinery was the largest remaining cost. Same rules, unknown keys dropped; a test holds the two
 * to the same answers.
 */
function readContactVars(value: unknown): ContactVars | undefined {
  if (!isRecord(value)) return undefined;
  const { name, language, vars } = value;
  if (!optionalString(name, 200) || !optionalString(language, 20)) return undefined;
  const out: ContactVars = {};
  if (name !== undefined) out.name = name as string;
  if (language !== undefined) out.language = language as string;
  if (vars !== undefined) {
    if (!isRecord(vars)) return undefined;
    const entries = Object.entries(vars);
    for (const [, text] of entries) if (typeof text !== 'string' || text.length > 2000) return undefined;
    // Like the schema, a `__proto__` key is dropped.
    out.vars = Object.fromEntries(entries.filter(([key]) => key !== '__proto__')) as Record<string, string>;
  }
  return out;
}

/** Decode `v`: absent or empty → `{}`; malformed → `undefined` (the caller speaks without variables). */
export function decodeContactVars(v: string | undefined): ContactVars | undefined {
  if (v === undefined || v === '') return {};
  try {
    return readContactVars(JSON.parse(Buffer.from(v, 'base64url').toString('utf8')));
  } catch {
    return undefined;
  }
}
