import type { IncomingMessage } from 'node:http';
import { HttpError } from '@clarion/http';

const EMPTY = new Uint8Array(0);

/**
 * Read the request body as raw bytes (the signature hashes exactly these), refusing more than
 * `limit` bytes with 413 as soon as the declared or received length exceeds it.
 */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new HttpError(413, 'body_too_large', `request body is larger than ${limit} bytes`);
  }
  if (declared === 0) return EMPTY;
  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (error?: Error, body?: Uint8Array) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (error) reject(error);
      else resolve(body ?? EMPTY);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.resume();
        finish(new HttpError(413, 'body_too_large', `request body is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(undefined, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    const onError = (error: Error) => finish(new HttpError(400, 'bad_request', `could not read the body: ${error.message}`));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
