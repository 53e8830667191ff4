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

  it('reads any JSON text, plain or not, as JSON.parse and the schema would, in the same key order', () => {
    const texts = [
      '{}',
      '{"name":"Ada","vars":{"area":"Riverside","until":"18:00"}}',
      '{"vars":{"until":"18:00","area":"Riverside"},"language":"cy-GB","name":"Ada"}',
      '{"vars":{}}',
      '{"name":"Zoë 🌊 ünïcödé","vars":{"é":"ü","2":"two","1":"one"}}',
      // Repeated keys: the last value, in the first place.
      '{"name":"A","name":"B"}',
      '{"vars":{"a":"1","b":"2","a":"3"}}',
      '{"vars":{"a":"1"},"vars":{"b":"2"}}',
      '{"vars":{"a":"z"},"vars":"x"}',
      // Not plain: whitespace, escapes, other value types, deeper nesting, `__proto__`.
      ' {"name":"Ada"}',
      '{"name" : "Ada"}',
      '{"name":"Ada"}\n',
      '{"name":"A\\"da"}',
      '{"name":"A\\u0041\\n"}',
      '{"name":"\\ud83c"}',
      '{"vars":{"a":"\\\\"}}',
      '{"name":null}',
      '{"name":7,"vars":{"a":"1"}}',
      '{"extra":[1,2],"name":"Ada"}',
      '{"extra":{"deep":{"er":"x"}},"name":"Ada"}',
      '{"vars":{"a":{"b":"c"}}}',
      '{"__proto__":"x","name":"Ada"}',
      '{"__proto__":{"name":"Eve"}}',
      '{"vars":{"__proto__":"x","b":"y"}}',
      '{"vars":{"b":"y","__proto__":{"polluted":"yes"}}}',
      '{"constructor":"x","toString":"y","name":"Ada"}',
      // Malformed: JSON.parse throws, so no variables.
      '{"name":"Ada"',
      '{"name":"Ada",}',
      '{"name":"Ada"}}',
      '{"name":"Ada"}x',
      '{"name":"Ada\u0001"}',
      '{"name:"Ada"}',
      '{name:"Ada"}',
      '{"name""Ada"}',
      '{,}',
      '{"vars":{"a":"1",}}',
      '{"vars":{"a":"1"}',
      ' ',
      '"text"',
      '[]',
    ];
    for (const text of texts) {
      let expected: ContactVars | undefined;
      try {
        const parsed = ContactVars.safeParse(JSON.parse(text));
        expected = parsed.success ? parsed.data : undefined;
      } catch {
        expected = undefined;
      }
      const decoded = decodeContactVars(Buffer.from(text, 'utf8').toString('base64url'));
      expect(decoded, text).toStrictEqual(expected);
      expect(JSON.stringify(decoded), text).toBe(JSON.stringify(expected));
    }
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('decodes a v too long for the reused buffer, and standard base64 or padding, as Buffer.from reads them', () => {
    const long = { name: 'Ada', vars: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'é'.repeat(2000)])) };
    expect(decodeContactVars(encodeContactVars(long))).toEqual(long);
    const short = { name: 'Bo?>', vars: { a: '~~~' } };
    const standard = Buffer.from(JSON.stringify(short)).toString('base64');
    expect(standard).toMatch(/[+/=]/);
    expect(decodeContactVars(standard)).toEqual(short);
    // After a long one, a short one is read from the start of the buffer, not mixed with leftovers.
    expect(decodeContactVars(encodeContactVars({ name: 'X' }))).toEqual({ name: 'X' });
  });
});
