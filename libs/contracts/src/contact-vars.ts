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

/** Decode `v`: absent or empty → `{}`; malformed → `undefined` (the caller speaks without variables). */
export function decodeContactVars(v: string | undefined): ContactVars | undefined {
  if (v === undefined || v === '') return {};
  try {
    const parsed = ContactVars.safeParse(JSON.parse(Buffer.from(v, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
