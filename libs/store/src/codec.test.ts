import { describe, expect, it } from 'vitest';
import { cloneDoc, decode, encode, valueKey } from './codec.js';

describe('cloneDoc', () => {
  it('copies plain objects, arrays and Dates deeply', () => {
    const at = new Date('2026-12-03T10:00:00.000Z');
    const doc = { _id: 'a', n: 1, nested: { list: [1, { x: 'y' }], at }, none: null, missing: undefined };
    const copy = cloneDoc(doc);
    expect(copy).toStrictEqual(doc);
    copy.nested.list.push(2);
    (copy.nested.list[1] as { x: string }).x = 'changed';
    copy.nested.at.setFullYear(2000);
    expect(doc.nested.list).toEqual([1, { x: 'y' }]);
    expect(doc.nested.at.toISOString()).toBe('2026-12-03T10:00:00.000Z');
    expect(copy.nested.at).toBeInstanceOf(Date);
  });

  it('hands other objects to structuredClone', () => {
    const doc = { tags: new Set(['a']), pattern: /x/i, bytes: new Uint8Array([1, 2]) };
    const copy = cloneDoc(doc);
    expect(copy.tags).not.toBe(doc.tags);
    expect([...copy.tags]).toEqual(['a']);
    expect(copy.pattern.source).toBe('x');
    expect([...copy.bytes]).toEqual([1, 2]);
  });

  it('agrees with the journal encoding', () => {
    const doc = { at: new Date(5), list: [{ a: 1 }] };
    expect(decode(encode(cloneDoc(doc)))).toStrictEqual(doc);
  });
});

describe('valueKey', () => {
  it('keys compound values injectively and equal values alike', () => {
    expect(valueKey(['a', 'b'])).toBe(valueKey(['a', 'b']));
    expect(valueKey(['ab', ''])).not.toBe(valueKey(['a', 'b']));
    expect(valueKey(['a:1', 'b'])).not.toBe(valueKey(['a', '1:b']));
    expect(valueKey([1, 'x'])).not.toBe(valueKey(['1', 'x']));
    expect(valueKey([null, 'x'])).toBe(valueKey([undefined, 'x']));
    expect(valueKey([{ a: 1 }])).toBe(valueKey([{ a: 1 }]));
  });
});
