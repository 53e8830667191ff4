/**
 * What `createNormaliserPool` and its worker threads send each other. A batch and its results travel
 * as one array per field: arrays of strings are several times cheaper to copy between threads than
 * as many small objects, and the copying happens on the thread that also stores the contacts.
 */

// Type-only: erased at compile time, so no import cycle with index.ts at run time.
import type { NormalisedNumber, NumberToNormalise } from './index.js';

export interface BatchMessage {
  id: number;
  input: string[];
  country: (string | null | undefined)[];
  defaultCountry: (string | undefined)[];
  timezone: (string | null | undefined)[];
}

/** Results by field; `e164` undefined marks a number that failed, with its `reason`. */
export interface ResultsMessage {
  id: number;
  e164: (string | undefined)[];
  country: (string | undefined)[];
  flagged: boolean[];
  readAs: (string | undefined)[];
  extension: (string | undefined)[];
  reason: (string | undefined)[];
}

export type ReplyMessage = ResultsMessage | { id: number; error: string };

export function batchMessage(id: number, batch: readonly NumberToNormalise[]): BatchMessage {
  return {
    id,
    input: batch.map((n) => n.input),
    country: batch.map((n) => n.country),
    defaultCountry: batch.map((n) => n.defaultCountry),
    timezone: batch.map((n) => n.timezone),
  };
}

export function batchOf(message: BatchMessage): NumberToNormalise[] {
  return message.input.map((input, i) => ({
    input,
    country: message.country[i],
    defaultCountry: message.defaultCountry[i],
    timezone: message.timezone[i],
  }));
}

export function resultsMessage(id: number, results: NormalisedNumber[]): ResultsMessage {
  const message: ResultsMessage = { id, e164: [], country: [], flagged: [], readAs: [], extension: [], reason: [] };
  for (const result of results) {
    message.e164.push(result.ok ? result.e164 : undefined);
    message.country.push(result.ok ? result.country : undefined);
    message.flagged.push(result.ok && result.flagged);
    message.readAs.push(result.ok ? result.readAs : undefined);
    message.extension.push(result.ok ? result.extension : undefined);
    message.reason.push(result.ok ? undefined : result.reason);
  }
  return message;
}

/**
 * The results as `normaliseNumber` returns them (the same fields, present or absent alike). `intern`
 * maps each country code to one shared string: copied between threads, every result would get its own.
 */
export function resultsOf(message: ResultsMessage, intern: (country: string) => string): NormalisedNumber[] {
  return message.e164.map((e164, i) => {
    if (e164 === undefined) return { ok: false, reason: message.reason[i] as string };
    const country = message.country[i];
    const result: NormalisedNumber = { ok: true, e164, country: country === undefined ? undefined : intern(country), flagged: message.flagged[i] as boolean };
    const readAs = message.readAs[i];
    if (readAs !== undefined) result.readAs = readAs as 'international' | 'timezone';
    const extension = message.extension[i];
    if (extension !== undefined) result.extension = extension;
    return result;
  });
}
