import { describe, expect, it } from 'vitest';
import { decodeContactVars, encodeContactVars } from './contact-vars.js';

describe('contact variables (v)', () => {
  it('round-trips name, language and vars through base64url', () => {
    const vars = { name: 'Zoë', language: 'fr-FR', vars: { area: 'Rive gauche & co', until: '18:00' } };
    const v = encodeContactVars(vars);
    expect(v).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeContactVars(v)).toEqual(vars);
  });

  it('reads an absent or empty v as no variables and a malformed one as undefined', () => {
    expect(decodeContactVars(undefined)).toEqual({});
    expect(decodeContactVars('')).toEqual({});
    expect(decodeContactVars('%%%not-base64')).toBeUndefined();
    expect(decodeContactVars(Buffer.from('[1,2]').toString('base64url'))).toBeUndefined();
    expect(decodeContactVars(encodeContactVars({ vars: { x: 'y'.repeat(2001) } }))).toBeUndefined();
  });
});
