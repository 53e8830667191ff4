import { createHash } from 'node:crypto';
import {
  BroadcastControlRequest,
  BroadcastControlState,
  BroadcastRequest,
  BroadcastSpec,
  ValidationError,
  attemptKey,
  broadcastEventSubject,
  contactFinalSubject,
  decodeJson,
  dialJobSubject,
  parseWith,
  type BroadcastCounts,
  type BroadcastEvent,
  type BroadcastReply,
  type ContactFinal,
  type DialJob,
  type ErrorBody,
  type FieldError,
} from '@clarion/contracts';
import { encodeJson, publishJson, type JetStreamClient, type KV, type NatsConnection } from '@clarion/nats';
import { countryCode, normaliseNumber } from '@clarion/phone';
import { z } from 'zod';
import { idempotencyKvKey, newId, stableId } from './ids.js';
import { checkMessage } from './message-check.js';
import { WindowedPublisher } from './publisher.js';
import type { Repos } from './repo.js';

/** What broadcast creation needs. */
export interface BroadcastDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  kv: { broadcasts: KV; control: KV; idempotency: KV };
  repos: Repos;
  now: () => Date;
  /** Outstanding dial-job publishes (acks not yet received) allowed at once. */
  maxInFlight?: number;
}

/** A request that cannot be served as asked: replied as `{ok:false, error}` and never retried. */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  constructor(
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
  ) {
    super(message);
  }
}

/** Reply shape of `broadcast.control`. */
export type ControlReply = { ok: true; state: BroadcastControlState } | { ok: false; error: ErrorBody };

const IdempotencyRecord = z.object({
  broadcastId: z.string(),
  status: z.enum(['enqueuing', 'enqueued']),
  /** SHA-256 of the request the key was first used for (without the key itself). */
  fingerprint: z.string().optional(),
  counts: z.unknown().optional(),
  invalid: z.array(z.object({ input: z.string(), reason: z.string() })).optional(),
});
type IdempotencyRecord = z.infer<typeof IdempotencyRecord>;

/** Inline numbers listed as invalid in a reply. */
const INVALID_LISTED = 100;

/** Turn an error into the `{code, message, details}` of an error reply. */
export function errorBody(error: unknown): ErrorBody {
  if (error instanceof ValidationError || error instanceof RequestError) {
    return { code: error.code, message: error.message, details: error.details };
  }
  return { code: 'internal', message: 'the broadcast could not be created; retry with the same idempotencyKey' };
}

/** True for errors caused by the request itself (never worth retrying). */
export const isRequestError = (error: unknown): boolean => error instanceof ValidationError || error instanceof RequestError;

/** Decode, validate and check the spoken text of a broadcast request; throws ValidationError/RequestError. */
export function parseRequest(data: Uint8Array | string, now = Date.now()): BroadcastRequest {
  const request = parseWith(BroadcastRequest, decodeJson(data, 'broadcast request'), 'broadcast request');
  const problems = [...checkMessage(request), ...checkRequest(request, now)];
  if (problems.length > 0) {
    throw new RequestError('invalid_request', `invalid broadcast request: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
  }
  return request;
}

/** What the schema alone cannot see: an unknown country, clashing keys, a past expiry, nobody callable. */
function checkRequest(request: BroadcastRequest, now: number): FieldError[] {
  const problems: FieldError[] = [];
  const { defaultCountry } = request.audience;
  if (!countryCode(defaultCountry)) {
    problems.push({ path: 'audience.defaultCountry', message: `"${defaultCountry}" is not a country Clarion knows (ISO 3166 alpha-2, e.g. US or GB)` });
  }
  const ack = request.acknowledgement;
  if (ack) {
    const keys = [
      ['key', ack.key],
      ['repeatKey', ack.repeatKey],
      ['optOutKey', ack.optOutKey],
    ] as const;
    for (const [i, [name, value]] of keys.entries()) {
      const earlier = keys.slice(0, i).find(([, other]) => value !== undefined && other === value);
      if (earlier) problems.push({ path: `acknowledgement.${name}`, message: `"${value}" is already acknowledgement.${earlier[0]}; each key needs its own digit` });
    }
  }
  if (request.expiresAt !== undefined && Date.parse(request.expiresAt) <= now) {
    problems.push({ path: 'expiresAt', message: `${request.expiresAt} is in the past: nobody would be called` });
  }
  // Inline numbers only and none of them callable: refuse rather than create a broadcast of nobody.
  // The enqueue normalises them all again: stop at the first callable one here.
  const { numbers } = request.audience;
  if (request.audience.listIds.length === 0 && problems.length === 0 && !numbers.some((item) => inlineNumber(item, defaultCountry).result.ok)) {
    problems.push(
      ...numbers.slice(0, INVALID_LISTED).map((item, index) => {
        const { input, result } = inlineNumber(item, defaultCountry);
        return { path: `audience.numbers.${index}`, message: `${input}: ${result.ok ? '' : result.reason}` };
      }),
    );
  }
  return problems;
}

/** One inline audience entry (a number, or an object with its own country and details), normalised. */
function inlineNumber(item: BroadcastRequest['audience']['numbers'][number], defaultCountry: string) {
  const detail = typeof item === 'object' && item !== null ? item : undefined;
  const input = detail ? detail.number : typeof item === 'string' ? item : '';
  const result = normaliseNumber(input, { country: detail?.country, defaultCountry, timezone: detail?.timezone });
  return { input, detail, result };
}

/** Throw `unknown_list` naming every list id that does not exist. */
export async function checkLists(request: BroadcastRequest, repos: Repos): Promise<void> {
  const listIds = [...new Set(request.audience.listIds)];
  if (listIds.length === 0) return;
  const found = new Set((await repos.lists.find({ _id: { $in: listIds } }, { projection: { _id: 1 } }).toArray()).map((l) => l._id));
  const missing = request.audience.listIds.map((id, index) => ({ id, index })).filter(({ id }) => !found.has(id));
  if (missing.length > 0) {
    throw new RequestError(
      'unknown_list',
      `unknown list id${missing.length > 1 ? 's' : ''}: ${missing.map((m) => m.id).join(', ')}`,
      missing.map((m) => ({ path: `audience.listIds.${m.index}`, message: `no list with id "${m.id}"` })),
    );
  }
}

/**
 * Create a broadcast (or return the one its idempotency key already made, finishing its enqueue if
 * that died half-way). Spec and control state are written first so dialers can start at once, then
 * the audience is streamed into one dial job per unique number.
 */
export async function createBroadcast(
  request: BroadcastRequest,
  deps: BroadcastDeps,
  options: { idempotencyKey?: string | undefined } = {},
): Promise<Extract<BroadcastReply, { ok: true }>> {
  const key = request.idempotencyKey ?? options.idempotencyKey;
  const kvKey = key === undefined ? undefined : idempotencyKvKey(key);
  let broadcastId = newId('b');
  let created = true;
  // A known key wins over everything else: a retry gets its broadcast even if a list is gone since.
  let existing = kvKey === undefined ? undefined : await readIdempotency(deps.kv.idempotency, kvKey);
  const fingerprint = fingerprintOf(request);
  if (!existing) {
    await checkLists(request, deps.repos);
    if (kvKey !== undefined) {
      const record: IdempotencyRecord = { broadcastId, status: 'enqueuing', fingerprint };
      try {
        await deps.kv.idempotency.create(kvKey, encodeJson(record));
      } catch (error) {
        // Lost a race with a replica handling the same key at the same moment.
        existing = await readIdempotency(deps.kv.idempotency, kvKey);
        if (!existing) throw error;
      }
    }
  }
  if (existing) {
    if (existing.fingerprint !== undefined && existing.fingerprint !== fingerprint) {
      // Returning the earlier broadcast would silently drop this (different) message or audience.
      throw new RequestError(
        'idempotency_conflict',
        `idempotencyKey "${key}" was already used for a different request (broadcast ${existing.broadcastId}); use a new key to send this one`,
        [{ path: 'idempotencyKey', message: 'already used for a different request' }],
      );
    }
    created = false;
    broadcastId = existing.broadcastId;
    if (existing.status === 'enqueued') {
      const spec = await readSpec(deps.kv.broadcasts, broadcastId);
      if (spec?.counts) return { ok: true, broadcastId, created, counts: spec.counts, invalid: existing.invalid ?? [] };
    }
  }
  const { counts, invalid } = await enqueue(broadcastId, request, deps);
  if (kvKey !== undefined) {
    const done: IdempotencyRecord = { broadcastId, status: 'enqueued', fingerprint: existing?.fingerprint ?? fingerprint, counts, invalid };
    await deps.kv.idempotency.put(kvKey, encodeJson(done));
  }
  return { ok: true, broadcastId, created, counts, invalid };
}

/** What makes two requests "the same" for an idempotency key: everything but the key. */
function fingerprintOf(request: BroadcastRequest): string {
  const { idempotencyKey: _key, ...rest } = request;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

async function readIdempotency(kv: KV, key: string): Promise<IdempotencyRecord | undefined> {
  const entry = await kv.get(key);
  if (!entry || entry.operation !== 'PUT') return undefined;
  const parsed = IdempotencyRecord.safeParse(entry.json());
  return parsed.success ? parsed.data : undefined;
}

async function readSpec(kv: KV, broadcastId: string): Promise<BroadcastSpec | undefined> {
  const entry = await kv.get(broadcastId);
  if (!entry || entry.operation !== 'PUT') return undefined;
  const parsed = BroadcastSpec.safeParse(entry.json());
  return parsed.success ? parsed.data : undefined;
}

/** Contacts read from the store before they are published in one go. */
const ENQUEUE_BATCH = 512;

/** Group an async iterable into arrays of up to `size` items. */
async function* batches<T>(items: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

interface AudienceEntry {
  number: string;
  /** Where the entry came from (`l:<contact id>` / `i:<index>`), for stable ids of duplicates. */
  source: string;
  name?: string | undefined;
  timezone?: string | undefined;
  language?: string | undefined;
  vars?: Record<string, string> | undefined;
}

async function enqueue(
  broadcastId: string,
  request: BroadcastRequest,
  deps: BroadcastDeps,
): Promise<{ counts: BroadcastCounts; invalid: { input: string; reason: string }[] }> {
  const { js, kv, repos } = deps;
  const at = () => deps.now().toISOString();
  const existingSpec = await readSpec(kv.broadcasts, broadcastId);
  const spec: BroadcastSpec = { id: broadcastId, createdAt: existingSpec?.createdAt ?? at(), request };
  if (!existingSpec) await kv.broadcasts.put(broadcastId, encodeJson(spec));
  const running: BroadcastControlState = { broadcastId, status: 'running', at: at() };
  // create(): a resumed enqueue must not undo a pause or cancel given meanwhile.
  await kv.control.create(broadcastId, encodeJson(running)).catch(() => undefined);
  const event = (type: BroadcastEvent['type'], counts?: BroadcastCounts): BroadcastEvent => ({
    kind: 'broadcast',
    broadcastId,
    type,
    at: at(),
    name: request.name,
    priority: request.priority,
    acknowledgement: request.acknowledgement !== undefined,
    ...(counts ? { counts } : {}),
  });
  await publishJson(js, broadcastEventSubject(broadcastId), event('created'), `bevt.${broadcastId}.created`);

  const counts: BroadcastCounts = { accepted: 0, invalid: 0, duplicate: 0, suppressed: 0 };
  const invalid: { input: string; reason: string }[] = [];
  const publisher = new WindowedPublisher(deps.nc, deps.maxInFlight ?? 4096);
  const listIds = [...new Set(request.audience.listIds)];
  // One list alone cannot hold a number twice (unique index); several lists or inline numbers can.
  const seen = listIds.length > 1 || request.audience.numbers.length > 0 ? new Set<string>() : undefined;
  const suppressed = new Set<string>();
  for await (const s of repos.suppressions.find({}, { projection: { number: 1 } })) suppressed.add(s.number);

  const final = (contactId: string, number: string, state: ContactFinal['state'], reason: string) => {
    const message: ContactFinal = { kind: 'contact', broadcastId, contactId, number, state, attempts: 0, at: at(), reason };
    return publisher.publish(contactFinalSubject(broadcastId), message, `final.${broadcastId}.${contactId}`);
  };
  /** Publishes synchronously while the window has room; a promise only when it must wait. */
  const take = (entry: AudienceEntry): Promise<void> | undefined => {
    if (seen) {
      if (seen.has(entry.number)) {
        counts.duplicate++;
        return final(stableId('d', broadcastId, entry.source), entry.number, 'duplicate', 'number already in this broadcast');
      }
      seen.add(entry.number);
    }
    const contactId = stableId('c', broadcastId, entry.number);
    if (suppressed.has(entry.number)) {
      counts.suppressed++;
      return final(contactId, entry.number, 'suppressed', 'number is on the do-not-call list');
    }
    counts.accepted++;
    const job: DialJob = { broadcastId, contactId, number: entry.number, attempt: 1 };
    if (entry.name !== undefined) job.name = entry.name;
    if (entry.timezone !== undefined) job.timezone = entry.timezone;
    if (entry.language !== undefined) job.language = entry.language;
    if (entry.vars !== undefined && Object.keys(entry.vars).length > 0) job.vars = entry.vars;
    return publisher.publish(dialJobSubject(broadcastId), job, attemptKey(broadcastId, contactId, 1));
  };

  try {
    for (const listId of listIds) {
      // One cursor per list (MongoDB streams it in batches); ids are derived from numbers, so order is free.
      // Read a batch, then publish it without yielding, so it leaves in one socket write.
      for await (const batch of batches(repos.contacts.find({ listId }), ENQUEUE_BATCH)) {
        for (const c of batch) {
          const wait = take({ number: c.number, source: `l:${c._id}`, name: c.name, timezone: c.timezone, language: c.language, vars: c.vars });
          if (wait) await wait;
        }
      }
    }
    for (const [index, item] of request.audience.numbers.entries()) {
      const { input, detail, result } = inlineNumber(item, request.audience.defaultCountry);
      if (!result.ok) {
        counts.invalid++;
        if (invalid.length < INVALID_LISTED) invalid.push({ input, reason: result.reason });
        continue;
      }
      const entry: AudienceEntry = { number: result.e164, source: `i:${index}` };
      if (detail) Object.assign(entry, { name: detail.name, timezone: detail.timezone, language: detail.language, vars: detail.vars });
      const wait = take(entry);
      if (wait) await wait;
    }
    await publisher.flush();
  } finally {
    publisher.close();
  }

  await kv.broadcasts.put(broadcastId, encodeJson({ ...spec, counts } satisfies BroadcastSpec));
  await publishJson(js, broadcastEventSubject(broadcastId), event('enqueued', counts), `bevt.${broadcastId}.enqueued`);
  return { counts, invalid };
}

const TARGET = { pause: 'paused', resume: 'running', cancel: 'cancelled' } as const;
const EVENT_TYPE = { pause: 'paused', resume: 'resumed', cancel: 'cancelled' } as const;

/** Pause, resume or cancel a broadcast: compare-and-set on its control state, then an event. */
export async function controlBroadcast(
  data: Uint8Array | string,
  deps: Pick<BroadcastDeps, 'js' | 'kv' | 'now'>,
): Promise<BroadcastControlState> {
  const request = parseWith(BroadcastControlRequest, decodeJson(data, 'control request'), 'control request');
  const { broadcastId, action } = request;
  if (!(await readSpec(deps.kv.broadcasts, broadcastId))) {
    throw new RequestError('not_found', `unknown broadcast "${broadcastId}"`, [
      { path: 'broadcastId', message: `no broadcast with id "${broadcastId}"` },
    ]);
  }
  for (let tries = 0; ; tries++) {
    const entry = await deps.kv.control.get(broadcastId);
    const current = entry && entry.operation === 'PUT' ? BroadcastControlState.safeParse(entry.json()) : undefined;
    const status = current?.success ? current.data.status : 'running';
    if (status === 'cancelled' && action !== 'cancel') {
      throw new RequestError('conflict', `broadcast "${broadcastId}" is cancelled and cannot be ${action}d`, [
        { path: 'action', message: 'the broadcast is cancelled' },
      ]);
    }
    if (current?.success && status === TARGET[action]) return current.data;
    const state: BroadcastControlState = { broadcastId, status: TARGET[action], at: deps.now().toISOString() };
    if (request.reason !== undefined) state.reason = request.reason;
    let revision: number;
    try {
      revision = entry ? await deps.kv.control.update(broadcastId, encodeJson(state), entry.revision) : await deps.kv.control.create(broadcastId, encodeJson(state));
    } catch (error) {
      if (tries < 5) continue; // another replica changed it between our read and write: read again
      throw error;
    }
    const event: BroadcastEvent = { kind: 'broadcast', broadcastId, type: EVENT_TYPE[action], at: state.at };
    if (request.reason !== undefined) event.reason = request.reason;
    await publishJson(deps.js, broadcastEventSubject(broadcastId), event, `bevt.${broadcastId}.${EVENT_TYPE[action]}.${revision}`);
    return state;
  }
}
