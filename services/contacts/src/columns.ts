import { HttpError } from '@clarion/http';

/** The contact fields an import column can feed; every other column becomes a message variable. */
export const IMPORT_FIELDS = ['phone', 'name', 'firstName', 'lastName', 'country', 'language', 'timezone', 'externalId'] as const;
export type ImportField = (typeof IMPORT_FIELDS)[number];

/** Column index of each recognised field, and the variable columns by name. */
export interface ColumnMap {
  fields: Partial<Record<ImportField, number>>;
  vars: { index: number; key: string }[];
  /**
   * Other phone-like columns, in order, read when a row's phone column is empty (`Cell` chosen, the
   * row only has a `Work Phone`): an empty cell must not leave out someone who can be reached.
   * None when the phone column was named explicitly.
   */
  phoneAlternates: number[];
}

const PHONE_LIKE = /phone|mobile|cell/;

/** A row's number: its phone column, else the first filled alternate; undefined when all are empty. */
export function phoneOf(values: readonly (string | undefined)[], columns: ColumnMap): string | undefined {
  for (const index of [columns.fields.phone, ...columns.phoneAlternates]) {
    const value = index === undefined ? undefined : values[index]?.trim();
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

const norm = (header: string): string => header.replace(/^\uFEFF/, '').trim().toLowerCase().replace(/[^a-z0-9]/g, '');

/** Header spellings recognised per field, after lower-casing and dropping everything but letters and digits. */
const KNOWN: Record<ImportField, string[]> = {
  phone: [
    'phone', 'mobile', 'cell', 'number', 'telephone', 'tel', 'msisdn', 'mobilephone', 'cellphone', 'phonenumber',
    'mobilenumber', 'cellnumber', 'telephonenumber', 'phoneno', 'mobileno', 'telno',
  ],
  name: ['name', 'fullname', 'contactname', 'displayname'],
  firstName: ['first', 'firstname', 'givenname', 'forename'],
  lastName: ['last', 'lastname', 'surname', 'familyname'],
  country: ['country', 'countrycode', 'countryname', 'nation'],
  language: ['language', 'lang', 'locale'],
  timezone: ['timezone', 'tz', 'zone'],
  externalId: ['externalid', 'employeeid', 'id', 'employeenumber', 'employeeno', 'staffid', 'personid'],
};

/**
 * Decide which column feeds which field: the explicit mapping first (by header, case-insensitive),
 * then the known spellings, then any header containing "phone"/"mobile" for the number.
 */
export function mapColumns(headers: string[], explicit: Partial<Record<ImportField, string>>): ColumnMap {
  const normalised = headers.map(norm);
  const fields: Partial<Record<ImportField, number>> = {};
  const used = new Set<number>();
  for (const [field, header] of Object.entries(explicit) as [ImportField, string][]) {
    const index = normalised.indexOf(norm(header));
    if (index < 0) {
      throw new HttpError(400, 'invalid_request', `map.${field}: no column named "${header}"`, [
        { path: `map.${field}`, message: `no column named "${header}" (columns: ${headers.map((h) => h.trim()).join(', ')})` },
      ]);
    }
    fields[field] = index;
    used.add(index);
  }
  for (const field of IMPORT_FIELDS) {
    if (fields[field] !== undefined) continue;
    const index = normalised.findIndex((h, i) => !used.has(i) && KNOWN[field].includes(h));
    if (index >= 0) {
      fields[field] = index;
      used.add(index);
    }
  }
  if (fields.phone === undefined) {
    const index = normalised.findIndex((h, i) => !used.has(i) && PHONE_LIKE.test(h));
    if (index >= 0) {
      fields.phone = index;
      used.add(index);
    }
  }
  if (fields.phone === undefined) {
    throw new HttpError(400, 'invalid_request', 'no phone column found; name one with map.phone=<header>', [
      { path: 'map.phone', message: `no phone column among: ${headers.map((h) => h.trim()).join(', ')}` },
    ]);
  }
  const vars = headers
    .map((header, index) => ({ index, key: header.replace(/^\uFEFF/, '').trim().slice(0, 64) }))
    .filter((c) => !used.has(c.index) && c.key !== '');
  const phoneAlternates =
    explicit.phone === undefined ? normalised.flatMap((h, i) => (!used.has(i) && (KNOWN.phone.includes(h) || PHONE_LIKE.test(h)) ? [i] : [])) : [];
  return { fields, vars, phoneAlternates };
}

/** The delimiter of a header line among `,`, `;` and tab (the one seen most outside quotes); `,` when none. */
export function detectDelimiter(headerLine: string): string {
  const counts: Record<string, number> = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (const ch of headerLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch in counts) counts[ch] = (counts[ch] ?? 0) + 1;
  }
  let best = ',';
  for (const candidate of [';', '\t']) if ((counts[candidate] ?? 0) > (counts[best] ?? 0)) best = candidate;
  return best;
}

/** A delimiter given in the query: `,` `;` `|`, or `tab` / `\t`. */
export function parseDelimiter(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'tab' || value === '\\t' || value === '\t') return '\t';
  if ([',', ';', '|'].includes(value)) return value;
  throw new HttpError(400, 'invalid_request', 'delimiter must be one of , ; | tab', [
    { path: 'delimiter', message: 'must be one of , ; | tab' },
  ]);
}
