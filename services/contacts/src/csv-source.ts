import { Readable, Transform } from 'node:stream';
import { parse } from 'csv-parse';
import { HttpError } from '@clarion/http';
import { detectDelimiter } from './columns.js';

const NEWLINE = 0x0a;
const HEAD_LIMIT = 64 * 1024;

/** One CSV record and the line of the file it starts on (1 = the first line, normally the header). */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/** Line breaks inside a record's (quoted) fields: the record spans that many more lines. */
function breaksIn(fields: readonly string[]): number {
  let n = 0;
  for (const field of fields) if (field.includes('\n') || field.includes('\r')) n += field.match(/\r\n|\r|\n/g)?.length ?? 0;
  return n;
}

/**
 * Stream CSV records (arrays of fields; the header is the first) from a request body without
 * buffering it: only the header line is held to detect the delimiter, then csv-parse reads on with
 * back-pressure. Handles a UTF-8 BOM, CRLF and quoted fields; fails with 413 past `maxBytes`.
 * Blank lines and lines of empty fields (`,,,`) are skipped but counted, so each record carries the
 * line number a user sees in an editor (a quoted field with line breaks spans several lines; its
 * record is numbered by its first line).
 */
export async function* csvRecords(
  body: Readable,
  options: { delimiter?: string | undefined; maxBytes: number },
): AsyncGenerator<CsvRecord> {
  let bytes = 0;
  const limited = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > options.maxBytes) {
        done(new HttpError(413, 'body_too_large', `import body is larger than ${options.maxBytes} bytes (MAX_IMPORT_BYTES)`));
      } else done(null, chunk);
    },
  });
  body.on('error', (error) => limited.destroy(error));
  body.pipe(limited);
  const iterator = limited[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const next = async (): Promise<Buffer | undefined> => {
    const step = await iterator.next();
    return step.done ? undefined : step.value;
  };

  const headChunks: Buffer[] = [];
  let headLength = 0;
  let ended = false;
  while (headLength < HEAD_LIMIT) {
    const chunk = await next();
    if (chunk === undefined) {
      ended = true;
      break;
    }
    headChunks.push(chunk);
    headLength += chunk.length;
    if (chunk.includes(NEWLINE)) break;
  }
  const head = Buffer.concat(headChunks);
  const firstLine = head.subarray(0, head.includes(NEWLINE) ? head.indexOf(NEWLINE) : head.length).toString('utf8');
  const delimiter = options.delimiter ?? detectDelimiter(firstLine.replace(/^\uFEFF/, ''));

  async function* rest(): AsyncGenerator<Buffer> {
    yield head;
    if (ended) return;
    for (;;) {
      const chunk = await next();
      if (chunk === undefined) return;
      yield chunk;
    }
  }
  const source = Readable.from(rest());
  // Empty lines come through as records (skipped below) so that every line is counted.
  const parser = parse({
    bom: true,
    delimiter,
    relax_column_count: true,
    trim: true,
  });
  source.on('error', (error) => parser.destroy(error));
  source.pipe(parser);
  try {
    let line = 1;
    for await (const fields of parser as AsyncIterable<string[]>) {
      const at = line;
      line += 1 + breaksIn(fields);
      if (fields.some((f) => f !== '')) yield { fields, line: at };
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('CSV_')) {
      throw new HttpError(400, 'invalid_csv', `invalid CSV: ${(error as Error).message}`);
    }
    throw error;
  } finally {
    source.destroy();
    // Read and drop what the client still sends, so it receives our answer instead of a reset.
    body.unpipe(limited);
    body.resume();
  }
}
