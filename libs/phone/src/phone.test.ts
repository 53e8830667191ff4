import { describe, expect, it } from 'vitest';
import { countryCode, normaliseNumber, voiceApiNumber } from './index.js';

describe('normaliseNumber', () => {
  it('makes one E.164 number of every way the same UK person is written', () => {
    for (const written of ['+44 20 7946 0123', '020 7946 0123', '0044 20 7946 0123', '442079460123', '+44 (0)20 7946 0123']) {
      expect(normaliseNumber(written, { country: 'GB' })).toMatchObject({ ok: true, e164: '+442079460123' });
    }
  });

  it('reads the country column as codes or common names, then falls back to the default', () => {
    for (const country of ['GB', 'UK', 'United Kingdom', 'united kingdom ']) {
      expect(normaliseNumber('0113 496 0978', { country, defaultCountry: 'US' })).toMatchObject({ e164: '+441134960978' });
    }
    for (const country of ['US', 'usa', 'United States']) {
      expect(normaliseNumber('(917) 555 0161', { country, defaultCountry: 'GB' })).toMatchObject({ e164: '+19175550161' });
    }
    expect(normaliseNumber('917.555.0161', { defaultCountry: 'US' })).toMatchObject({ e164: '+19175550161' });
  });

  it('accepts possible-but-unassigned numbers flagged, rejects impossible ones with a reason', () => {
    expect(normaliseNumber('07700 900034', { country: 'GB' })).toMatchObject({ ok: true, flagged: true });
    expect(normaliseNumber('12', { defaultCountry: 'US' })).toEqual({ ok: false, reason: 'impossible number for US (no country given; read as US)' });
    expect(normaliseNumber('n/a', { defaultCountry: 'US' })).toEqual({ ok: false, reason: 'phone number contains letters' });
    expect(normaliseNumber('', {})).toEqual({ ok: false, reason: 'empty phone number' });
    expect(normaliseNumber('020 7946 0123', { country: 'Narnia' })).toEqual({ ok: false, reason: 'unknown country "Narnia"' });
    // North America: area codes and exchanges never start with 0 or 1 (fresh-user finding: these were accepted flagged).
    const nanp = 'impossible number for US: area code and exchange cannot start with 0 or 1';
    expect(normaliseNumber('0207946010', { defaultCountry: 'US' })).toEqual({ ok: false, reason: `${nanp} (no country given; read as US)` });
    expect(normaliseNumber('111 555 0100', { country: 'US' })).toEqual({ ok: false, reason: nanp });
    expect(normaliseNumber('+1 212 155 0100')).toEqual({ ok: false, reason: nanp.replace('US', '+1') });
    expect(normaliseNumber('+1 212 555 0100')).toMatchObject({ ok: true, e164: '+12125550100' });
  });

  it('maps country names and strips the plus for the Voice API', () => {
    expect(countryCode('Great Britain')).toBe('GB');
    expect(countryCode('zz')).toBeUndefined();
    expect(voiceApiNumber('+14155550100')).toBe('14155550100');
  });
});

describe('numbers written with an extension', () => {
  it('keeps the main number callable and returns the extension, never silently dropped', () => {
    expect(normaliseNumber('020 7946 0123 ext 9', { defaultCountry: 'GB' })).toEqual({ ok: true, e164: '+442079460123', country: 'GB', flagged: false, extension: '9' });
    for (const written of ['+1 212 555 0100 x12', '+1 212 555 0100 ext. 12', '+1 212 555 0100 extension 12', '+1 212 555 0100 #12', '+1 212 555 0100;ext=12', '(212) 555-0100x12']) {
      expect(normaliseNumber(written, { defaultCountry: 'US' }), written).toMatchObject({ ok: true, e164: '+12125550100', extension: '12' });
    }
    // A form only libphonenumber knows is reported too.
    expect(normaliseNumber('+1 212 555 0100 , 12', { defaultCountry: 'US' })).toMatchObject({ ok: true, e164: '+12125550100', extension: '12' });
    // The extension's digits never join the number in a rescue reading.
    expect(normaliseNumber('0044 20 7946 0911 ext 7', { defaultCountry: 'US' })).toMatchObject({ ok: true, e164: '+442079460911', readAs: 'international', extension: '7' });
    expect(normaliseNumber('+1 212 555 0100', { defaultCountry: 'US' })).not.toHaveProperty('extension');
    expect(normaliseNumber('fax 12', { defaultCountry: 'US' })).toEqual({ ok: false, reason: 'phone number contains letters' });
  });
});

describe('rescues for numbers the country column cannot explain', () => {
  it('reads 00 as the international prefix and long bare digits as international', () => {
    expect(normaliseNumber('0044 20 7946 0911', { defaultCountry: 'US' })).toMatchObject({ ok: true, e164: '+442079460911', readAs: 'international' });
    expect(normaliseNumber('441514960175', { defaultCountry: 'US' })).toMatchObject({ ok: true, e164: '+441514960175', readAs: 'international' });
  });

  it("uses the row's time zone for national numbers with no country", () => {
    expect(normaliseNumber('(0151) 496-0501', { defaultCountry: 'US', timezone: 'Europe/London' })).toMatchObject({
      ok: true,
      e164: '+441514960501',
      readAs: 'timezone',
    });
    expect(normaliseNumber('0117 496 0711', { defaultCountry: 'US', timezone: 'Europe/London' })).toMatchObject({ e164: '+441174960711' });
    // Without a hint the same number stays invalid, with the primary reading's reason.
    expect(normaliseNumber('0117 496 0711', { defaultCountry: 'US' })).toMatchObject({ ok: false });
  });

  it('never overrides a valid primary reading', () => {
    expect(normaliseNumber('2125550123', { defaultCountry: 'US', timezone: 'Europe/London' })).toEqual({
      ok: true,
      e164: '+12125550123',
      country: 'US',
      flagged: false,
    });
    expect(normaliseNumber('+44 20 7946', { defaultCountry: 'US', timezone: 'Europe/London' })).toMatchObject({ ok: false });
  });
});
