import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN, startHarness, type Harness } from './harness.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));

let h: Harness;

async function importInto(name: string, body: Uint8Array | string, query = '', type = 'text/csv') {
  const list = await h.http('POST', '/v1/lists', { name });
  expect(list.status).toBe(201);
  const res = await h.http('POST', `/v1/lists/${list.body.id}/import${query}`, body, { 'content-type': type });
  return { listId: list.body.id as string, res };
}

async function contactsOf(listId: string): Promise<any[]> {
  const res = await h.http('GET', `/v1/lists/${listId}/contacts?limit=1000`);
  return [...res.body.contacts].sort((a, b) => a.number.localeCompare(b.number));
}

const report = (body: any) => ({
  rowsRead: body.rowsRead,
  imported: body.imported,
  updated: body.updated,
  flagged: body.flagged,
  invalid: body.invalid,
  duplicate: body.duplicate,
});

// Every import test runs twice: numbers normalised inline, and on an import worker thread.
describe.each([{ threads: 0 }, { threads: 1 }])('CSV import (import threads: $threads)', ({ threads }) => {
  beforeAll(async () => {
    h = await startHarness({ importThreads: threads });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('reads a UTF-8 BOM, CRLF line ends and quoted fields with commas and quotes', async () => {
    const { listId, res } = await importInto('bom', fixture('bom-crlf-quoted.csv'));
    expect(res.status).toBe(200);
    expect(report(res.body)).toEqual({ rowsRead: 3, imported: 3, updated: 0, flagged: 0, invalid: [], duplicate: [] });
    const contacts = await contactsOf(listId);
    expect(contacts.map((c) => [c.number, c.name, c.vars])).toEqual([
      ['+12125550101', 'Smith, Jane', { Department: 'Ops, Night' }],
      ['+12125550102', 'Bob Jones', { Department: 'IT' }],
      ['+16465550103', 'Quote "Q" Person', { Department: 'A, B, C' }],
    ]);
  });

  it('detects ";", joins first and last names, and reads countries spelled UK / United Kingdom / usa', async () => {
    const { listId, res } = await importInto('semicolon', fixture('semicolon-countries.csv'), '?defaultCountry=GB');
    // 07700 900xxx is a possible but unassigned UK mobile range: accepted and flagged.
    expect(report(res.body)).toEqual({ rowsRead: 4, imported: 4, updated: 0, flagged: 1, invalid: [], duplicate: [] });
    const contacts = await contactsOf(listId);
    expect(contacts.map((c) => [c.number, c.name, c.country, c.flagged])).toEqual([
      ['+12125550104', 'Sam Ray', 'US', false],
      ['+442079460123', 'Ann Lee', 'GB', false],
      ['+442079460125', 'No Country', 'GB', false],
      ['+447700900123', 'Tom Hardy', 'GB', true],
    ]);
  });

  it('detects tabs and maps employee id, time zone and language; other columns become variables', async () => {
    const { listId, res } = await importInto('tabs', fixture('tab-separated.tsv'));
    expect(report(res.body)).toEqual({ rowsRead: 2, imported: 2, updated: 0, flagged: 0, invalid: [], duplicate: [] });
    const contacts = await contactsOf(listId);
    expect(contacts.map((c) => [c.number, c.name, c.externalId, c.timezone, c.language, c.vars])).toEqual([
      ['+16465550105', 'Brian', 'E2', 'America/New_York', 'en-US', { Site: 'NYC' }],
      ['+442079460124', 'Alice', 'E1', 'Europe/London', 'en-GB', { Site: 'Leeds' }],
    ]);
  });

  it('reports each junk phone value with its row and reason, and duplicates with the row they repeat', async () => {
    const { res } = await importInto('junk', fixture('junk-phone.csv'));
    expect(report(res.body)).toEqual({
      rowsRead: 6,
      imported: 1,
      updated: 0,
      flagged: 0,
      // Rows are the file's line numbers: the header is line 1.
      invalid: [
        { row: 2, reason: 'phone number contains letters' },
        { row: 3, reason: 'empty phone number' },
        { row: 4, reason: 'impossible number for US (no country given; read as US)' },
        { row: 6, reason: 'impossible number for +44' },
      ],
      duplicate: [{ row: 7, of: 5 }],
    });
  });

  it('numbers rows by the line a user sees in the file: blank lines, ",,," lines and multi-line quoted fields counted', async () => {
    const csv = [
      'name,phone,note', // line 1
      '', // 2
      'Ann,+1 212 555 0161,', // 3
      ',,', // 4
      'Bob,not a number,"two', // 5
      'lines"', // 6
      '  ', // 7
      'Cat,+1 212 555 0161,', // 8: repeats line 3
      '"Dee',
      'Dalton",12,', // 9-10: impossible number, reported at its first line
      '',
      'Eve,+1 212 555 0163,last', // 12
    ].join('\r\n');
    const { listId, res } = await importInto('lines', csv);
    expect(report(res.body)).toEqual({
      rowsRead: 5,
      imported: 2,
      updated: 0,
      flagged: 0,
      invalid: [
        { row: 5, reason: 'phone number contains letters' },
        { row: 9, reason: 'impossible number for US (no country given; read as US)' },
      ],
      duplicate: [{ row: 8, of: 3 }],
    });
    expect((await contactsOf(listId)).map((c) => c.name)).toEqual(['Ann', 'Eve']);
  });

  it('imports a number with an extension on its main number and reports the extension it cannot dial', async () => {
    const csv = 'name,phone,country\nOffice,020 7946 0123 ext 9,GB\nDesk,+1 212 555 0100 x12,\nPlain,+1 212 555 0164,\n';
    const { listId, res } = await importInto('extensions', csv);
    expect(res.body).toMatchObject({ imported: 3, invalidCount: 0, extensionDroppedCount: 2, extensionDropped: [{ row: 2, extension: '9' }, { row: 3, extension: '12' }] });
    expect((await contactsOf(listId)).map((c) => c.number)).toEqual(['+12125550100', '+12125550164', '+442079460123']);
  });

  it('rescues numbers the default country cannot explain: 00 prefix, bare international, the row time zone', async () => {
    const { listId, res } = await importInto('hints', fixture('no-country-hints.csv'), '?defaultCountry=US');
    expect(res.status).toBe(200);
    expect(report(res.body)).toEqual({
      rowsRead: 4,
      imported: 3,
      updated: 0,
      flagged: 0,
      invalid: [{ row: 5, reason: 'impossible number for RU (no country given; read as US)' }],
      duplicate: [],
    });
    expect((await contactsOf(listId)).map((c) => c.number)).toEqual(['+441514960175', '+441514960501', '+442079460911']);
  });

  it('treats +44 20 7946 0123, 020 7946 0123, 0044 20 7946 0123 and 442079460123 as one person', async () => {
    const { listId, res } = await importInto('same', fixture('same-person-gb.csv'), '?defaultCountry=GB');
    expect(report(res.body)).toEqual({
      rowsRead: 4,
      imported: 1,
      updated: 0,
      flagged: 0,
      invalid: [],
      duplicate: [
        { row: 3, of: 2 },
        { row: 4, of: 2 },
        { row: 5, of: 2 },
      ],
    });
    expect((await contactsOf(listId)).map((c) => c.number)).toEqual(['+442079460123']);
  });

  it('adds nothing when the same file is imported again (add and upsert modes)', async () => {
    const { listId, res } = await importInto('twice', fixture('bom-crlf-quoted.csv'));
    expect(res.body.imported).toBe(3);
    const again = await h.http('POST', `/v1/lists/${listId}/import`, fixture('bom-crlf-quoted.csv'), { 'content-type': 'text/csv' });
    expect(report(again.body)).toEqual({ rowsRead: 3, imported: 0, updated: 0, flagged: 0, invalid: [], duplicate: [] });
    expect(again.body.unchanged).toBe(3);
    const upsert = await h.http('POST', `/v1/lists/${listId}/import?mode=upsert`, fixture('bom-crlf-quoted.csv'), { 'content-type': 'text/csv' });
    expect(report(upsert.body)).toEqual({ rowsRead: 3, imported: 0, updated: 0, flagged: 0, invalid: [], duplicate: [] });
    expect((await h.http('GET', `/v1/lists/${listId}`)).body.counts).toEqual({ contacts: 3, flagged: 0 });
  });

  it('upsert updates changed rows; replace removes contacts missing from the file', async () => {
    const { listId } = await importInto('modes', 'name,phone\nA,+1 212 555 0120\nB,+1 212 555 0121\n');
    const upsert = await h.http('POST', `/v1/lists/${listId}/import?mode=upsert`, 'name,phone\nA2,+1 212 555 0120\nC,+1 212 555 0122\n', {
      'content-type': 'text/csv',
    });
    expect([upsert.body.imported, upsert.body.updated, upsert.body.removed]).toEqual([1, 1, 0]);
    expect((await contactsOf(listId)).map((c) => [c.number, c.name])).toEqual([
      ['+12125550120', 'A2'],
      ['+12125550121', 'B'],
      ['+12125550122', 'C'],
    ]);
    const replace = await h.http('POST', `/v1/lists/${listId}/import?mode=replace`, 'name,phone\nA2,+1 212 555 0120\n', { 'content-type': 'text/csv' });
    expect([replace.body.imported, replace.body.updated, replace.body.unchanged, replace.body.removed]).toEqual([0, 0, 1, 2]);
    expect((await contactsOf(listId)).map((c) => c.number)).toEqual(['+12125550120']);
    // A header-only or all-invalid file never empties the list (fresh-user finding: it removed everyone).
    for (const body of ['name,phone\n', 'name,phone\nX,not a number\n']) {
      const refused = await h.http('POST', `/v1/lists/${listId}/import?mode=replace`, body, { 'content-type': 'text/csv' });
      expect(refused.status).toBe(200);
      expect(refused.body).toMatchObject({ status: 'failed', removed: 0, error: expect.stringContaining('replace refused') });
      expect((await contactsOf(listId)).map((c) => c.number)).toEqual(['+12125550120']);
    }
  });

  it('follows an explicit column mapping and an explicit delimiter', async () => {
    const { listId, res } = await importInto('map', fixture('explicit-map.csv'), '?map.phone=Work&map.name=Full%20Name');
    expect(res.body.imported).toBe(2);
    const contacts = await contactsOf(listId);
    expect(contacts.map((c) => [c.number, c.name, c.vars])).toEqual([
      ['+12125550110', 'Zoe', { 'Mobile Phone': '+1 212 555 0111', Team: 'Red' }],
      ['+12125550112', 'Yan', { 'Mobile Phone': '+1 212 555 0113', Team: 'Blue' }],
    ]);
    const piped = await importInto('pipe', 'name|phone\nP|+1 212 555 0130\n', '?delimiter=%7C');
    expect(piped.res.body.imported).toBe(1);
  });

  it('imports a JSON array of objects', async () => {
    const rows = [
      { name: 'J1', phone: '+1 212 555 0140', shift: 'night' },
      { name: 'J2', mobile: '020 7946 0140', country: 'UK' },
      { name: 'J3' },
    ];
    const { listId, res } = await importInto('json', JSON.stringify(rows), '', 'application/json');
    expect(res.status).toBe(200);
    expect(res.body.imported).toBe(2);
    expect(res.body.invalid).toEqual([{ row: 3, reason: 'no phone column found; name one with map.phone=<header>' }]);
    expect((await contactsOf(listId)).map((c) => [c.number, c.vars])).toEqual([
      ['+12125550140', { shift: 'night' }],
      ['+442079460140', {}],
    ]);
  });

  it('takes the number of a row from another phone column when the chosen one is empty (fresh-user finding)', async () => {
    const csv = 'First,Last,Work Phone,Cell\r\nAnn,Ash,+1 212 555 0145,+1 212 555 0146\r\nBo,Birch,+1 212 555 0147,\r\nCy,Cedar,,\r\n';
    const { listId, res } = await importInto('alt-phone', csv);
    expect(res.body).toMatchObject({ rowsRead: 3, imported: 2, invalidCount: 1 });
    expect(res.body.invalid).toEqual([{ row: 4, reason: 'empty phone number' }]);
    expect((await contactsOf(listId)).map((c) => c.number).sort()).toEqual(['+12125550146', '+12125550147']);
  });

  it('reports a JSON element that is not a flat object as an invalid row, numbered from 1 (fresh-user finding)', async () => {
    const rows = [{ name: { first: 'Ann' }, phone: '+1 212 555 0141' }, { name: 'Bo', phone: '+1 212 555 0142' }, '+1 212 555 0143', { name: 'Cy', phone: ['+1 212 555 0144'] }, null];
    const { listId, res } = await importInto('json-odd', JSON.stringify(rows), '', 'application/json');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ rowsRead: 5, imported: 1, invalidCount: 4 });
    expect(res.body.invalid).toEqual([
      { row: 1, reason: '"name" is an object; give text or a number' },
      { row: 3, reason: 'not an object but a string' },
      { row: 4, reason: '"phone" is a list; give text or a number' },
      { row: 5, reason: 'not an object but null' },
    ]);
    expect((await contactsOf(listId)).map((c) => [c.number, c.name])).toEqual([['+12125550142', 'Bo']]);
  });

  it('makes the report pollable at /v1/imports/:jobId', async () => {
    const { res } = await importInto('poll', fixture('junk-phone.csv'), '?jobId=job-poll-1');
    expect(res.body.jobId).toBe('job-poll-1');
    const polled = await h.http('GET', '/v1/imports/job-poll-1');
    expect(polled.status).toBe(200);
    expect(polled.body).toEqual(res.body);
    expect(polled.body.status).toBe('completed');
  });

  it('rejects bad imports with clear errors', async () => {
    const noPhone = await importInto('nophone', 'name,email\nA,a@example.com\n');
    expect(noPhone.res.status).toBe(400);
    expect(noPhone.res.body.error.details[0].path).toBe('map.phone');

    const badMap = await importInto('badmap', fixture('explicit-map.csv'), '?map.phone=Nope');
    expect(badMap.res.status).toBe(400);
    expect(badMap.res.body.error.message).toContain('no column named "Nope"');

    const badCsv = await importInto('badcsv', 'name,phone\n"unclosed,+1 212 555 0150\n');
    expect(badCsv.res.status).toBe(400);
    expect(badCsv.res.body.error.code).toBe('invalid_csv');

    const big = await importInto('big', `name,phone\n${'x,+1 212 555 0151\n'.repeat(70_000)}`);
    expect(big.res.status).toBe(413);

    // Without a Content-Length the limit is enforced while streaming.
    const list = await h.http('POST', '/v1/lists', { name: 'chunked' });
    const chunk = new TextEncoder().encode('x,+1 212 555 0152\n'.repeat(10_000));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ === 0) controller.enqueue(new TextEncoder().encode('name,phone\n'));
        else if (sent < 10) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const chunked = await fetch(`${h.url}/v1/lists/${list.body.id}/import`, {
      method: 'POST',
      body: stream,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/csv' },
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { error: { code: string } }).error.code).toBe('body_too_large');

    const badType = await importInto('type', '<xml/>', '', 'application/xml');
    expect(badType.res.status).toBe(415);

    const badMode = await importInto('mode', 'name,phone\n', '?mode=merge');
    expect(badMode.res.status).toBe(400);
    expect(badMode.res.body.error.details[0].path).toBe('mode');

    const missing = await h.http('POST', '/v1/lists/nope/import', 'name,phone\n', { 'content-type': 'text/csv' });
    expect(missing.status).toBe(404);
  });
});
