/** The worker thread of `createNormaliserPool`: normalises each batch it is sent and answers by id. */

import { parentPort } from 'node:worker_threads';
import { normaliseNumbers } from './index.js';
import { batchOf, resultsMessage, type BatchMessage, type ReplyMessage } from './wire.js';

/** Most distinct sources kept; libphonenumber's metadata holds a few thousand patterns in all. */
const REGEXP_CACHE_LIMIT = 10_000;

/**
 * libphonenumber-js builds a new RegExp from a metadata pattern for every check it makes
 * (`matchesEntirely`), and building one costs far more than running it: about a third of the time a
 * number takes. Only libphonenumber runs in this thread, so here `new RegExp(source)` without flags
 * returns one shared instance per source. Sharing is safe because a RegExp without the g or y flag
 * keeps no state between uses (exec and test ignore and never write its lastIndex); a RegExp with
 * flags, from a RegExp, or of a subclass is built as usual. The pool's tests compare this thread's
 * results with the calling thread's, where RegExp is untouched.
 */
function shareFlaglessRegExps(): void {
  const Native = RegExp;
  const built = new Map<string, RegExp>();
  const Shared: RegExpConstructor = new Proxy(Native, {
    construct(target, args: unknown[], newTarget) {
      const [source, flags] = args;
      if (newTarget !== Shared) return Reflect.construct(target, args, newTarget) as object;
      if (typeof source !== 'string' || flags !== undefined) return new Native(source as string, flags as string | undefined);
      let regexp = built.get(source);
      if (!regexp) {
        regexp = new Native(source);
        if (built.size < REGEXP_CACHE_LIMIT) built.set(source, regexp);
      }
      return regexp;
    },
  });
  globalThis.RegExp = Shared;
}

shareFlaglessRegExps();

parentPort?.on('message', (message: BatchMessage) => {
  let reply: ReplyMessage;
  try {
    reply = resultsMessage(message.id, normaliseNumbers(batchOf(message)));
  } catch (error) {
    reply = { id: message.id, error: error instanceof Error ? error.message : String(error) };
  }
  parentPort?.postMessage(reply);
});
