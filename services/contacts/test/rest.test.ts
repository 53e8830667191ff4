import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('REST API', () => {
  it('requires the bearer token but serves /healthz, /readyz and /metrics without it', async () => {
    const anonymous = await fetch(`${h.url}/v1/lists`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.url}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { nats: true, store: true } });
    expect(await (await fetch(`${h.url}/metrics`)).text()).toContain('contacts_broadcast_requests_total');
  });

  it('creates, lists, renames and deletes lists', async () => {
    const created = await h.http('POST', '/v1/lists', { name: 'Night shift', id: 'night-shift' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'night-shift', name: 'Night shift' });
    expect((await h.http('POST', '/v1/lists', { name: 'again', id: 'night-shift' })).status).toBe(409);
    expect((await h.http('POST', '/v1/lists', { name: 'bad', id: 'has.dot' })).body.error.details[0].path).toBe('id');
    expect((await h.http('POST', '/v1/lists', { name: '' })).status).toBe(400);
    expect((await h.http('POST', '/v1/lists', '{oops', { 'content-type': 'application/json' })).status).toBe(400);

    const renamed = await h.http('PATCH', '/v1/lists/night-shift', { name: 'Nights' });
    expect(renamed.body.name).toBe('Nights');
    const one = await h.http('GET', '/v1/lists/night-shift');
    expect(one.body).toMatchObject({ id: 'night-shift', name: 'Nights', counts: { contacts: 0, flagged: 0 } });
    expect((await h.http('GET', '/v1/lists')).body.lists.map((l: { id: string }) => l.id)).toContain('night-shift');

    expect((await h.http('DELETE', '/v1/lists/night-shift')).status).toBe(204);
    expect((await h.http('GET', '/v1/lists/night-shift')).status).toBe(404);
  });

  it('adds, reads, searches, updates and deletes contacts; a number is unique within a list', async () => {
    const list = (await h.http('POST', '/v1/lists', { name: 'People' })).body.id;
    const ann = await h.http('POST', `/v1/lists/${list}/contacts`, { number: '020 7946 0190', country: 'United Kingdom', name: 'Ann Smith', vars: { site: 'Leeds' } });
    expect(ann.status).toBe(201);
    expect(ann.body).toMatchObject({ number: '+442079460190', country: 'GB', name: 'Ann Smith', vars: { site: 'Leeds' }, flagged: false });
    const dup = await h.http('POST', `/v1/lists/${list}/contacts`, { number: '+44 20 7946 0190' });
    expect(dup.status).toBe(409);
    expect(dup.body.error.details).toEqual({ contactId: ann.body.id });
    const bad = await h.http('POST', `/v1/lists/${list}/contacts`, { number: 'nope nope' });
    expect(bad.body.error).toMatchObject({ code: 'invalid_request', details: [{ path: 'number', message: 'phone number contains letters' }] });
    await h.http('POST', `/v1/lists/${list}/contacts`, { number: '(212) 555-0191', name: 'Bob Jones' });
    await h.http('POST', `/v1/lists/${list}/contacts`, { number: '(212) 555-0192', name: 'Cat Smith' });

    const byName = await h.http('GET', `/v1/lists/${list}/contacts?q=smith`);
    expect(byName.body.contacts.map((c: { name: string }) => c.name).sort()).toEqual(['Ann Smith', 'Cat Smith']);
    const byNumber = await h.http('GET', `/v1/lists/${list}/contacts?q=555-0191`);
    expect(byNumber.body.contacts.map((c: { name: string }) => c.name)).toEqual(['Bob Jones']);

    const page1 = await h.http('GET', `/v1/lists/${list}/contacts?limit=2`);
    expect(page1.body.contacts).toHaveLength(2);
    const page2 = await h.http('GET', `/v1/lists/${list}/contacts?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.contacts).toHaveLength(1);
    expect(page2.body.nextCursor).toBeNull();

    const path = `/v1/lists/${list}/contacts/${ann.body.id}`;
    expect((await h.http('GET', path)).body.name).toBe('Ann Smith');
    const patched = await h.http('PATCH', path, { name: null, timezone: 'Europe/London', number: '+44 20 7946 0193' });
    expect(patched.body).toMatchObject({ number: '+442079460193', timezone: 'Europe/London' });
    expect(patched.body.name).toBeUndefined();
    expect((await h.http('PATCH', path, { timezone: 'Mars/Base' })).body.error.details[0].path).toBe('timezone');
    expect((await h.http('PATCH', path, { number: '+1 212 555 0191' })).status).toBe(409);
    expect((await h.http('DELETE', path)).status).toBe(204);
    expect((await h.http('GET', path)).status).toBe(404);
  });

  it('adds a number written with an extension on its main number and says the extension was left out', async () => {
    const list = (await h.http('POST', '/v1/lists', { name: 'Desks' })).body.id;
    const desk = await h.http('POST', `/v1/lists/${list}/contacts`, { number: '(212) 555-0196 ext 4', name: 'Front desk' });
    expect(desk.status).toBe(201);
    expect(desk.body).toMatchObject({ number: '+12125550196', extensionDropped: '4' });
    const plain = await h.http('POST', `/v1/lists/${list}/contacts`, { number: '(212) 555-0197' });
    expect(plain.body).not.toHaveProperty('extensionDropped');
  });

  it('keeps a do-not-call list: add, list, import and delete suppressions', async () => {
    const one = await h.http('POST', '/v1/suppressions', { number: '(212) 555-0194', reason: 'asked' });
    expect(one).toMatchObject({ status: 201, body: { added: 1, existing: 0, invalid: [] } });
    expect((await h.http('POST', '/v1/suppressions', { number: '+12125550194' })).body).toEqual({ added: 0, existing: 1, invalid: [] });
    expect((await h.http('POST', '/v1/suppressions', { number: 'abc def' })).status).toBe(400);

    // Rows are the file's lines (header = line 1), blank lines counted.
    const imported = await h.http('POST', '/v1/suppressions/import?defaultCountry=GB', 'phone\n020 7946 0195\n\n+12125550194\njunk\n', { 'content-type': 'text/csv' });
    expect(imported.body).toEqual({ rowsRead: 3, added: 1, existing: 1, invalid: [{ row: 5, reason: 'phone number contains letters' }] });

    const listed = await h.http('GET', '/v1/suppressions');
    expect(listed.body.suppressions.map((s: { number: string; source: string }) => [s.number, s.source])).toEqual([
      ['+12125550194', 'api'],
      ['+442079460195', 'import'],
    ]);
    expect((await h.http('DELETE', '/v1/suppressions/%2B12125550194')).status).toBe(204);
    expect((await h.http('DELETE', '/v1/suppressions/%2B12125550194')).status).toBe(404);
  });
});
