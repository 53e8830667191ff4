import { parsePhoneNumberFromString, isSupportedCountry, type CountryCode } from 'libphonenumber-js/max';

/** Common ways spreadsheets spell a country, mapped to ISO 3166 alpha-2. */
const COUNTRY_ALIASES: Record<string, string> = {
  UK: 'GB',
  'GREAT BRITAIN': 'GB',
  BRITAIN: 'GB',
  ENGLAND: 'GB',
  SCOTLAND: 'GB',
  WALES: 'GB',
  'NORTHERN IRELAND': 'GB',
  'UNITED KINGDOM': 'GB',
  USA: 'US',
  'U.S.': 'US',
  'U.S.A.': 'US',
  AMERICA: 'US',
  'UNITED STATES': 'US',
  'UNITED STATES OF AMERICA': 'US',
  IRELAND: 'IE',
  CANADA: 'CA',
  AUSTRALIA: 'AU',
  'NEW ZEALAND': 'NZ',
  GERMANY: 'DE',
  FRANCE: 'FR',
  SPAIN: 'ES',
  ITALY: 'IT',
  NETHERLANDS: 'NL',
  INDIA: 'IN',
};

/** The ISO alpha-2 code for a country given as a code or a common name; undefined when unknown. */
export function countryCode(value: string | undefined | null): CountryCode | undefined {
  if (!value) return undefined;
  const key = value.trim().toUpperCase().replace(/\s+/g, ' ');
  if (key === '') return undefined;
  const code = COUNTRY_ALIASES[key] ?? key;
  return isSupportedCountry(code) ? (code as CountryCode) : undefined;
}

export type NormalisedNumber =
  | {
      ok: true;
      /** E.164 with `+`. */
      e164: string;
      country: string | undefined;
      /** Possible by length but not in current numbering tables: accepted, flagged. */
      flagged: boolean;
    }
  | { ok: false; reason: string };

/**
 * Normalise a phone number to E.164 once, using the row's country, else the default. Valid numbers
 * pass; possible-but-unassigned numbers pass flagged (a wrongly dropped emergency contact is worse
 * than a failed call); impossible ones fail with a reason.
 */
export function normaliseNumber(
  input: string,
  options: { country?: string | undefined | null; defaultCountry?: string | undefined } = {},
): NormalisedNumber {
  const raw = input.trim();
  if (raw === '') return { ok: false, reason: 'empty phone number' };
  if (/[a-z]/i.test(raw.replace(/\b(ext|x)\.?\s*\d+$/i, ''))) return { ok: false, reason: 'phone number contains letters' };
  if (!/\d/.test(raw)) return { ok: false, reason: 'phone number has no digits' };
  const rowCountry = countryCode(options.country);
  if (options.country && options.country.trim() !== '' && rowCountry === undefined) {
    return { ok: false, reason: `unknown country "${options.country.trim()}"` };
  }
  const defaultCountry = rowCountry ?? countryCode(options.defaultCountry);
  const parsed = parsePhoneNumberFromString(raw, defaultCountry ? { defaultCountry } : {});
  if (!parsed) {
    return {
      ok: false,
      reason: defaultCountry ? 'not a phone number' : 'national-format number with no country to interpret it',
    };
  }
  if (!parsed.isPossible()) return { ok: false, reason: `impossible number for ${parsed.country ?? `+${parsed.countryCallingCode}`}` };
  return { ok: true, e164: parsed.number, country: parsed.country, flagged: !parsed.isValid() };
}

/** E.164 without `+`, as the Voice API wants it. */
export const voiceApiNumber = (e164: string): string => e164.replace(/^\+/, '');
