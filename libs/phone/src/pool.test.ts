import { afterEach, describe, expect, it } from 'vitest';
import { createNormaliserPool, normaliseNumbers, type NormaliserPool, type NumberToNormalise } from './index.js';

// Every kind of result: valid, flagged, rescued (00, bare international, time zone), extensions, each invalid reason.
const KINDS: NumberToNormalise[] = [
  { input: '+44 20 7946 0123', country: 'GB' },
  { input: '020 7946 0123', defaultCountry: 'GB' },
  { input: '(212) 555-0100x12', defaultCountry: 'US' },
  { input: '+1 212 555 0100 , 12', defaultCountry: 'US' },
  { input: '07700 900034', country: 'UK' },
  { input: '0044 20 7946 0911 ext 7', defaultCountry: 'US' },
  { input: '441514960175', defaultCountry: 'US' },
  { input: '(0151) 496-0501', defaultCountry: 'US', timezone: 'Europe/London' },
  { input: '0117 496 0711', defaultCountry: 'US' },
  { input: '12', defaultCountry: 'US' },
  { input: 'n/a', defaultCountry: 'US' },
  { input: '   ', defaultCountry: 'US' },
  { input: '---', defaultCountry: 'US' },
  { input: '020 7946 0123', country: 'Narnia' },
  { input: '+44 20 7946' },
];

/** 2,000 numbers in a fixed order: the kinds above mixed into fictional US and UK numbers. */
function sample(): NumberToNormalise[] {
  return Array.from({ length: 2000 }, (_, i) =>
    i % 7 === 0
      ? (KINDS[(i / 7) % KINDS.length] as NumberToNormalise)
      : i % 2 === 0
        ? { input: `(212) 555-01${String(i % 100).padStart(2, '0')}`, defaultCountry: 'US' }
        : { input: `020 7946 0${String(i % 1000).padStart(3, '0')}`, country: 'GB', defaultCountry: 'US' },
  );
}

const batches = (items: NumberToNormalise[], size: number) =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

let pool: NormaliserPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('createNormaliserPool', () => {
  it('gives the inline results, in order, for batches spread over two worker threads', async () => {
    pool = createNormaliserPool({ threads: 2 });
    const items = sample();
    const inline = normaliseNumbers(items);
    // The sample really holds every kind of outcome.
    expect(inline.filter((r) => !r.ok).length).toBeGreaterThan(50);
    expect(inline.some((r) => r.ok && r.flagged)).toBe(true);
    expect(inline.some((r) => r.ok && r.readAs === 'timezone')).toBe(true);
    expect(inline.some((r) => r.ok && r.extension !== undefined)).toBe(true);

    const results = await Promise.all(batches(items, 150).map((batch) => pool!.normalise(batch)));
    expect(pool.running()).toBe(2);
    expect(results.flat()).toStrictEqual(inline);
  });

  it('finishes batches in flight inline when closed, and starts again on the next batch', async () => {
    pool = createNormaliserPool({ threads: 1 });
    const items = sample();
    const pending = batches(items, 500).map((batch) => pool!.normalise(batch));
    await pool.close();
    expect(pool.running()).toBe(0);
    expect((await Promise.all(pending)).flat()).toStrictEqual(normaliseNumbers(items));

    expect(await pool.normalise(KINDS)).toStrictEqual(normaliseNumbers(KINDS));
    expect(pool.running()).toBe(1);
  });

  it('rejects a batch the way the inline path throws', async () => {
    pool = createNormaliserPool({ threads: 1 });
    // Reason for the cast: a caller outside TypeScript can pass anything.
    const bad = [{ input: undefined as unknown as string }];
    expect(() => normaliseNumbers(bad)).toThrow(TypeError);
    await expect(pool.normalise(bad)).rejects.toThrow(/trim/);
    expect(pool.running()).toBe(1);
  });

  it('normalises inline with 0 threads', async () => {
    pool = createNormaliserPool({ threads: 0 });
    expect(await pool.normalise(KINDS)).toStrictEqual(normaliseNumbers(KINDS));
    expect(pool.running()).toBe(0);
  });
});
