import { describe, expect, it } from 'vitest';
import { ContactVars, decodeContactVars, encodeContactVars } from './contact-vars.js';

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

  it('decodes exactly as the ContactVars schema would', () => {
    const cases: unknown[] = [
      {},
      { name: 'Ada' },
      { name: 'x'.repeat(200), language: 'y'.repeat(20) },
      { name: 'x'.repeat(201) },
      { language: 'y'.repeat(21) },
      { name: 5 },
      { name: null },
      { language: ['en'] },
      { vars: {} },
      { vars: { a: '1', b: '' } },
      { vars: { a: 1 } },
      { vars: { a: null } },
      { vars: [] },
      { vars: null },
      { vars: 'a=1' },
      { vars: { a: 'z'.repeat(2000) } },
      { vars: { a: 'z'.repeat(2001) } },
      { name: 'Ada', extra: { deep: true }, vars: { a: 'b' } },
      JSON.parse('{"vars":{"__proto__":"x","constructor":"y"}}'),
      [],
      'text',
      7,
      null,
      true,
    ];
    for (const value of cases) {
      const parsed = ContactVars.safeParse(value);
      const decoded = decodeContactVars(Buffer.from(JSON.stringify(value), 'utf8').toString('base64url'));
      expect(decoded, JSON.stringify(value)).toStrictEqual(parsed.success ? parsed.data : undefined);
    }
  });
});
