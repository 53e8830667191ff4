import { HttpError, badRequest, conflict, notFound, validate } from '@clarion/http';
import { E164, Id, isTimeZone } from '@clarion/contracts';
import { normaliseNumber } from '@clarion/phone';
import { bodyParser } from '@koa/bodyparser';
import { CsvError } from 'csv-parse';
import { Router } from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { IMPORT_FIELDS, mapColumns, parseDelimiter, phoneOf, type ColumnMap, type ImportField } from './columns.js';
import { csvRecords } from './csv-source.js';
import { newId } from './ids.js';
import { Importer, reportOf, type ImportMode, type Normalise } from './importer.js';
import { isDuplicateKey, type ContactDoc, type ListDoc, type Repos } from './repo.js';
import type { ContactsMetrics } from './metrics.js';
import { suppress } from './suppressions.js';

export interface RouteDeps {
  repos: Repos;
  now: () => Date;
  defaultCountry: string;
  maxImportBytes: number;
  storeKind: 'embedded' | 'mongodb';
  metrics?: ContactsMetrics;
  /** Where imports normalise their numbers (a worker pool); inline when not given. */
  normalise?: Normalise;
}

const ListBody = z.strictObject({ name: z.string().trim().min(1).max(200), id: Id.optional() });
const RenameBody = z.strictObject({ name: z.string().trim().min(1).max(200) });
const Vars = z.record(z.string().min(1).max(64), z.string().max(500));
const TimeZone = z.string().refine(isTimeZone, 'must be an IANA time zone such as Europe/London');
const ContactFields = {
  name: z.string().trim().min(1).max(200),
  country: z.string().max(40),
  language: z.string().max(20),
  timezone: TimeZone,
  externalId: z.string().max(200),
  vars: Vars,
};
const ContactBody = z.strictObject({
  number: z.string().min(3).max(40),
  name: ContactFields.name.optional(),
  country: ContactFields.country.optional(),
  language: ContactFields.language.optional(),
  timezone: ContactFields.timezone.optional(),
  externalId: ContactFields.externalId.optional(),
  vars: ContactFields.vars.optional(),
});
const ContactPatch = z.strictObject({
  number: z.string().min(3).max(40).optional(),
  name: ContactFields.name.nullable().optional(),
  country: ContactFields.country.optional(),
  language: ContactFields.language.nullable().optional(),
  timezone: ContactFields.timezone.nullable().optional(),
  externalId: ContactFields.externalId.nullable().optional(),
  vars: ContactFields.vars.optional(),
});
const Page = z.object({
  cursor: Id.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  q: z.string().trim().max(100).optional(),
});
const ImportQuery = z.object({
  defaultCountry: z
    .string()
    .regex(/^[A-Za-z]{2}$/, 'must be an ISO 3166 alpha-2 code such as GB')
    .transform((s) => s.toUpperCase())
    .optional(),
  delimiter: z.string().optional(),
  mode: z.enum(['add', 'upsert', 'replace']).default('add'),
  jobId: Id.optional(),
});
const SuppressionBody = z.union([
  z.strictObject({ number: z.string().min(3).max(40), country: z.string().max(40).optional(), reason: z.string().max(500).optional() }),
  z.strictObject({ numbers: z.array(z.string().min(3).max(40)).min(1).max(10_000), country: z.string().max(40).optional(), reason: z.string().max(500).optional() }),
]);

const listView = (l: ListDoc) => ({ id: l._id, name: l.name, createdAt: l.createdAt, updatedAt: l.updatedAt });

/** A contact as the API shows it (without the import bookkeeping). */
export function contactView(c: ContactDoc) {
  const { _id, importId: _importId, importRow: _importRow, ...rest } = c;
  return { id: _id, ...rest };
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The REST API: lists, contacts, imports and suppressions under /v1. */
export function createRouter(deps: RouteDeps): Router {
  const { repos, now } = deps;
  const router = new Router({ prefix: '/v1' });
  const json = bodyParser({ enableTypes: ['json'], jsonLimit: '1mb' });

  const idParam = (ctx: Context, name: string): string => {
    const value = (ctx.params as Record<string, string | undefined>)[name];
    return validate(Id, value, `path parameter ${name}`);
  };
  const loadList = async (ctx: Context): Promise<ListDoc> => {
    const id = idParam(ctx, 'id');
    const list = await repos.lists.findOne({ _id: id });
    if (!list) throw notFound(`list "${id}"`);
    return list;
  };
  const normalise = (number: string, country: string | undefined) => {
    const result = normaliseNumber(number, { country, defaultCountry: deps.defaultCountry });
    if (!result.ok) throw badRequest(`invalid number: ${result.reason}`, [{ path: 'number', message: result.reason }]);
    return result;
  };

  router.post('/lists', json, async (ctx) => {
    const body = validate(ListBody, ctx.request.body);
    const at = now().toISOString();
    const list: ListDoc = { _id: body.id ?? newId('l'), name: body.name, createdAt: at, updatedAt: at };
    try {
      await repos.lists.insertOne(list);
    } catch (error) {
      if (isDuplicateKey(error)) throw conflict(`list "${list._id}" already exists`);
      throw error;
    }
    ctx.status = 201;
    ctx.body = listView(list);
  });

  router.get('/lists', async (ctx) => {
    const lists = await repos.lists.find({}, { sort: { createdAt: 1, _id: 1 } }).toArray();
    ctx.body = { lists: lists.map(listView) };
  });

  router.get('/lists/:id', async (ctx) => {
    const list = await loadList(ctx);
    const [contacts, flagged] = await Promise.all([
      repos.contacts.countDocuments({ listId: list._id }),
      repos.contacts.countDocuments({ listId: list._id, flagged: true }),
    ]);
    ctx.body = { ...listView(list), counts: { contacts, flagged } };
  });

  router.patch('/lists/:id', json, async (ctx) => {
    const list = await loadList(ctx);
    const body = validate(RenameBody, ctx.request.body);
    const updatedAt = now().toISOString();
    await repos.lists.updateOne({ _id: list._id }, { $set: { name: body.name, updatedAt } });
    ctx.body = listView({ ...list, name: body.name, updatedAt });
  });

  router.delete('/lists/:id', async (ctx) => {
    const list = await loadList(ctx);
    await repos.contacts.deleteMany({ listId: list._id });
    await repos.lists.deleteOne({ _id: list._id });
    ctx.status = 204;
  });

  router.post('/lists/:id/contacts', json, async (ctx) => {
    const list = await loadList(ctx);
    const body = validate(ContactBody, ctx.request.body);
    const number = normalise(body.number, body.country);
    const at = now().toISOString();
    const contact: ContactDoc = { _id: newId('c'), listId: list._id, number: number.e164, vars: body.vars ?? {}, flagged: number.flagged, createdAt: at, updatedAt: at };
    if (number.country !== undefined) contact.country = number.country;
    for (const key of ['name', 'language', 'timezone', 'externalId'] as const) {
      if (body[key] !== undefined) contact[key] = body[key];
    }
    try {
      await repos.contacts.insertOne(contact);
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      const existing = await repos.contacts.findOne({ listId: list._id, number: number.e164 });
      throw conflict(`number already in list "${list._id}"`, { contactId: existing?._id });
    }
    ctx.status = 201;
    // The main number is stored; an extension cannot be dialled, so the reply says it was left out.
    ctx.body = number.extension === undefined ? contactView(contact) : { ...contactView(contact), extensionDropped: number.extension };
  });

  router.get('/lists/:id/contacts', async (ctx) => {
    const list = await loadList(ctx);
    const page = validate(Page, ctx.query, 'query');
    const filter: Record<string, unknown> = { listId: list._id };
    if (page.cursor !== undefined) filter._id = { $gt: page.cursor };
    if (page.q !== undefined && page.q !== '') {
      const or: Record<string, unknown>[] = [{ name: { $regex: escapeRegex(page.q), $options: 'i' } }];
      const digits = page.q.replace(/\D/g, '');
      if (digits.length >= 3) {
        const asNumber = normaliseNumber(page.q, { defaultCountry: deps.defaultCountry });
        or.push({ number: { $regex: escapeRegex(digits) } });
        if (asNumber.ok) or.push({ number: asNumber.e164 });
      }
      filter.$or = or;
    }
    const contacts = await repos.contacts.find(filter, { sort: { _id: 1 }, limit: page.limit }).toArray();
    const last = contacts[contacts.length - 1];
    ctx.body = { contacts: contacts.map(contactView), nextCursor: contacts.length === page.limit && last ? last._id : null };
  });

  const loadContact = async (ctx: Context) => {
    const list = await loadList(ctx);
    const cid = idParam(ctx, 'cid');
    const contact = await repos.contacts.findOne({ _id: cid, listId: list._id });
    if (!contact) throw notFound(`contact "${cid}" in list "${list._id}"`);
    return contact;
  };

  router.get('/lists/:id/contacts/:cid', async (ctx) => {
    ctx.body = contactView(await loadContact(ctx));
  });

  router.patch('/lists/:id/contacts/:cid', json, async (ctx) => {
    const contact = await loadContact(ctx);
    const body = validate(ContactPatch, ctx.request.body);
    const set: Record<string, unknown> = { updatedAt: now().toISOString() };
    const unset: Record<string, ''> = {};
    if (body.number !== undefined || body.country !== undefined) {
      const number = normalise(body.number ?? contact.number, body.country ?? contact.country);
      Object.assign(set, { number: number.e164, flagged: number.flagged });
      if (number.country !== undefined) set.country = number.country;
    }
    for (const key of ['name', 'language', 'timezone', 'externalId'] as const) {
      const value = body[key];
      if (value === null) unset[key] = '';
      else if (value !== undefined) set[key] = value;
    }
    if (body.vars !== undefined) set.vars = body.vars;
    const update: Record<string, unknown> = { $set: set };
    if (Object.keys(unset).length > 0) update.$unset = unset;
    try {
      await repos.contacts.updateOne({ _id: contact._id }, update);
    } catch (error) {
      if (isDuplicateKey(error)) throw conflict(`number already in list "${contact.listId}"`);
      throw error;
    }
    const updated = await repos.contacts.findOne({ _id: contact._id });
    ctx.body = contactView(updated ?? contact);
  });

  router.delete('/lists/:id/contacts/:cid', async (ctx) => {
    const contact = await loadContact(ctx);
    await repos.contacts.deleteOne({ _id: contact._id });
    ctx.status = 204;
  });

  router.post('/lists/:id/import', async (ctx) => {
    const list = await loadList(ctx);
    const query = validate(ImportQuery, ctx.query, 'query');
    const delimiter = parseDelimiter(query.delimiter);
    const explicit = explicitMapping(ctx.query);
    const importer = new Importer({
      repos,
      listId: list._id,
      jobId: query.jobId ?? newId('imp'),
      mode: query.mode as ImportMode,
      defaultCountry: query.defaultCountry ?? deps.defaultCountry,
      now,
      lookup: deps.storeKind === 'embedded' ? 'each' : 'batch',
      ...(deps.normalise ? { normalise: deps.normalise } : {}),
    });
    const declared = Number(ctx.get('content-length') || 0);
    if (declared > deps.maxImportBytes) {
      throw new HttpError(413, 'body_too_large', `import body is larger than ${deps.maxImportBytes} bytes (MAX_IMPORT_BYTES)`);
    }
    const type = ctx.request.type;
    if (type !== 'text/csv' && type !== 'application/json' && type !== 'text/plain' && type !== 'text/tab-separated-values') {
      throw new HttpError(415, 'unsupported_media_type', 'send text/csv or application/json (an array of objects)');
    }
    try {
      await importer.begin();
    } catch (error) {
      if (isDuplicateKey(error)) throw conflict(`import job "${query.jobId}" already exists`);
      throw error;
    }
    try {
      if (type === 'application/json') {
        await bodyParser({ enableTypes: ['json'], jsonLimit: deps.maxImportBytes })(ctx, async () => undefined);
        const rows = validate(z.array(z.unknown()).max(1_000_000), ctx.request.body, 'import body');
        const maps = new Map<string, ColumnMap>();
        for (const row of rows) {
          // One odd element is one invalid row (numbered from 1 like the others), not a failed import.
          if (row === null || typeof row !== 'object' || Array.isArray(row)) {
            importer.skip(`not an object but ${row === null ? 'null' : Array.isArray(row) ? 'an array' : `a ${typeof row}`}`);
            continue;
          }
          const nested = Object.entries(row).find(([, v]) => v !== null && typeof v === 'object');
          if (nested) {
            // String() would turn it into "[object Object]", which text-to-speech would then read out.
            importer.skip(`"${nested[0]}" is ${Array.isArray(nested[1]) ? 'a list' : 'an object'}; give text or a number`);
            continue;
          }
          const headers = Object.keys(row);
          const signature = headers.join('\u0000');
          let columns = maps.get(signature);
          if (!columns) {
            try {
              columns = mapColumns(headers, explicit);
            } catch (error) {
              // One odd object is one invalid row, not a failed import.
              importer.skip(error instanceof HttpError ? error.message : 'unreadable row');
              continue;
            }
            maps.set(signature, columns);
          }
          await importer.row(Object.values(row).map((v) => (v === null || v === undefined ? undefined : String(v))), columns);
        }
      } else {
        let columns: ColumnMap | undefined;
        for await (const { fields, line } of csvRecords(ctx.req, { delimiter, maxBytes: deps.maxImportBytes })) {
          if (!columns) columns = mapColumns(fields, explicit);
          else await importer.row(fields, columns, line);
        }
      }
    } catch (error) {
      await importer.fail((error as Error).message ?? 'import failed');
      // A CSV the parser cannot read is the client's fault: 400 naming the parser's complaint, not a 500.
      if (error instanceof CsvError) throw new HttpError(400, 'invalid_csv', error.message);
      throw error;
    }
    const done = await importer.finish();
    for (const result of ['imported', 'updated', 'unchanged'] as const) deps.metrics?.importRows.inc({ result }, done[result]);
    deps.metrics?.importRows.inc({ result: 'invalid' }, done.invalidCount);
    deps.metrics?.importRows.inc({ result: 'duplicate' }, done.duplicateCount);
    ctx.body = done;
  });

  router.get('/lists/:id/imports', async (ctx) => {
    const list = await loadList(ctx);
    const jobs = await repos.imports.find({ listId: list._id }, { sort: { startedAt: -1 }, limit: 100 }).toArray();
    ctx.body = { imports: jobs.map(reportOf) };
  });

  router.get('/imports/:jobId', async (ctx) => {
    const jobId = idParam(ctx, 'jobId');
    const job = await repos.imports.findOne({ _id: jobId });
    if (!job) throw notFound(`import "${jobId}"`);
    ctx.body = reportOf(job);
  });

  router.post('/suppressions', json, async (ctx) => {
    const body = validate(SuppressionBody, ctx.request.body);
    const inputs = 'numbers' in body ? body.numbers : [body.number];
    const result = { added: 0, existing: 0, invalid: [] as { input: string; reason: string }[] };
    for (const input of inputs) {
      const number = normaliseNumber(input, { country: body.country, defaultCountry: deps.defaultCountry });
      if (!number.ok) {
        result.invalid.push({ input, reason: number.reason });
        continue;
      }
      if (await suppress(repos, { number: number.e164, source: 'api', reason: body.reason }, now)) result.added++;
      else result.existing++;
    }
    if ('number' in body && result.invalid.length > 0) {
      throw badRequest(`invalid number: ${result.invalid[0]?.reason}`, [{ path: 'number', message: result.invalid[0]?.reason ?? '' }]);
    }
    ctx.status = result.added > 0 ? 201 : 200;
    ctx.body = result;
  });

  router.post('/suppressions/import', async (ctx) => {
    const query = validate(ImportQuery.pick({ defaultCountry: true, delimiter: true }), ctx.query, 'query');
    const explicit = explicitMapping(ctx.query);
    const result = { rowsRead: 0, added: 0, existing: 0, invalid: [] as { row: number; reason: string }[] };
    let columns: ColumnMap | undefined;
    for await (const { fields: record, line: row } of csvRecords(ctx.req, { delimiter: parseDelimiter(query.delimiter), maxBytes: deps.maxImportBytes })) {
      if (!columns) {
        columns = mapColumns(record, explicit);
        continue;
      }
      result.rowsRead++;
      const cell = (i: number | undefined) => (i === undefined ? undefined : record[i]);
      const number = normaliseNumber(phoneOf(record, columns) ?? '', {
        country: cell(columns.fields.country),
        defaultCountry: query.defaultCountry ?? deps.defaultCountry,
      });
      if (!number.ok) {
        if (result.invalid.length < 1000) result.invalid.push({ row, reason: number.reason });
        continue;
      }
      if (await suppress(repos, { number: number.e164, source: 'import' }, now)) result.added++;
      else result.existing++;
    }
    ctx.body = result;
  });

  router.get('/suppressions', async (ctx) => {
    const page = validate(Page.omit({ q: true }).extend({ cursor: z.string().max(20).optional() }), ctx.query, 'query');
    const filter = page.cursor !== undefined ? { _id: { $gt: page.cursor } } : {};
    const items = await repos.suppressions.find(filter, { sort: { _id: 1 }, limit: page.limit }).toArray();
    const last = items[items.length - 1];
    ctx.body = {
      suppressions: items.map(({ _id, ...rest }) => rest),
      nextCursor: items.length === page.limit && last ? last._id : null,
    };
  });

  router.delete('/suppressions/:number', async (ctx) => {
    const raw = String((ctx.params as Record<string, string>).number ?? '');
    const number = normaliseNumber(raw, { defaultCountry: deps.defaultCountry });
    const e164 = number.ok ? number.e164 : raw;
    if (!E164.safeParse(e164).success) throw badRequest('give the number in E.164 form, e.g. %2B14155550100');
    const { deletedCount } = await repos.suppressions.deleteOne({ _id: e164 });
    if (deletedCount === 0) throw notFound(`suppression of ${e164}`);
    ctx.status = 204;
  });

  return router;
}

/** `map.<field>=<header>` query parameters (field names case-insensitive). */
function explicitMapping(query: Record<string, unknown>): Partial<Record<ImportField, string>> {
  const mapping: Partial<Record<ImportField, string>> = {};
  for (const [key, value] of Object.entries(query)) {
    if (!key.startsWith('map.')) continue;
    const field = IMPORT_FIELDS.find((f) => f.toLowerCase() === key.slice(4).toLowerCase());
    if (!field) {
      throw badRequest(`unknown mapping ${key}; fields: ${IMPORT_FIELDS.join(', ')}`, [{ path: key, message: `fields: ${IMPORT_FIELDS.join(', ')}` }]);
    }
    if (typeof value !== 'string' || value.trim() === '') throw badRequest(`${key} must name one column`, [{ path: key, message: 'must name one column' }]);
    mapping[field] = value;
  }
  return mapping;
}
