import { describe, expect, it } from 'vitest';
import { detectDelimiter, mapColumns, phoneOf } from './columns.js';

describe('detectDelimiter', () => {
  it('picks the separator seen most outside quotes', () => {
    expect(detectDelimiter('name,phone,site')).toBe(',');
    expect(detectDelimiter('name;phone;"a,b"')).toBe(';');
    expect(detectDelimiter('name\tphone\tsite')).toBe('\t');
    expect(detectDelimiter('phone')).toBe(',');
  });
});

describe('mapColumns', () => {
  it('recognises common header spellings and keeps the rest as variables', () => {
    const map = mapColumns(['\uFEFFEmployee ID', 'First Name', 'Surname', 'Cell', 'TZ', 'Lang', 'Country', 'Shift'], {});
    expect(map.fields).toEqual({ externalId: 0, firstName: 1, lastName: 2, phone: 3, timezone: 4, language: 5, country: 6 });
    expect(map.vars).toEqual([{ index: 7, key: 'Shift' }]);
  });

  it('prefers an explicit mapping and falls back to any "phone" header', () => {
    expect(mapColumns(['Home', 'Work Phone'], {}).fields.phone).toBe(1);
    expect(mapColumns(['Home', 'Mobile'], { phone: 'home' }).fields.phone).toBe(0);
    expect(mapColumns(['Home', 'Mobile'], { phone: 'home' }).vars).toEqual([{ index: 1, key: 'Mobile' }]);
    expect(() => mapColumns(['name', 'email'], {})).toThrow('no phone column');
  });

  it('reads another phone column when the chosen one is empty in a row, unless the column was named', () => {
    const map = mapColumns(['First', 'Last', 'Work Phone', 'Cell', 'Home Tel'], {});
    expect(map.fields.phone).toBe(3);
    expect(map.phoneAlternates).toEqual([2]);
    expect(phoneOf(['A', 'B', '+1 212 555 0101', '+1 212 555 0102'], map)).toBe('+1 212 555 0102');
    expect(phoneOf(['A', 'B', '+1 212 555 0101', '  '], map)).toBe('+1 212 555 0101');
    expect(phoneOf(['A', 'B', '', ''], map)).toBeUndefined();
    const named = mapColumns(['Work Phone', 'Cell'], { phone: 'Cell' });
    expect(named.phoneAlternates).toEqual([]);
    expect(phoneOf(['+1 212 555 0101', ''], named)).toBeUndefined();
  });
});
