import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listWithCsv, startHarness, type Harness } from './harness.js';

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/**
 * A CSV of 1,700 rows (several import batches) mixing every outcome at known lines: invalid numbers,
 * extensions, flagged numbers, repeats within and across batches, and blank lines that shift the line
 * numbers. Returns the text and what the report must say, worked out from how the rows were written.
 */
function mixedCsv() {
  const lines = ['name,phone,country'];
  const invalid: { row: number; reason: string }[] = [];
  const extensionDropped: { row: number; extension: string }[] = [];
  const firstLine = new Map<string, number>();
  const duplicate: { row: number; of: number }[] = [];
  let flagged = 0;
  for (let i = 0; i < 1700; i++) {
    if (i % 300 === 150) lines.push(''); // a blank line: counted, not a row
    const line = lines.length + 1;
    let phone: string;
    let country = '';
    let e164: string | undefined;
    if (i % 97 === 5) {
      phone = 'n/a';
      invalid.push({ row: line, reason: 'phone number contains letters' });
    } else if (i % 89 === 7) {
      phone = '12';
      invalid.push({ row: line, reason: 'impossible number for US (no country given; read as US)' });
    } else if (i % 50 === 3) {
      // 07700 900xxx: possible but unassigned, accepted flagged.
      phone = `07700 900${pad(i % 1000, 3)}`;
      country = 'GB';
      e164 = `+447700900${pad(i % 1000, 3)}`;
    } else if (i % 40 === 1) {
      phone = `+1 212 555 01${pad(i % 100, 2)} x${i}`;
      e164 = `+121255501${pad(i % 100, 2)}`;
      extensionDropped.push({ row: line, extension: String(i) });
    } else {
      phone = `020 7946 0${pad(i % 1000, 3)}`;
      country = 'UK';
      e164 = `+442079460${pad(i % 1000, 3)}`;
    }
    lines.push(`Person ${i},${phone},${country}`);
    if (e164 === undefined) continue;
    const of = firstLine.get(e164);
    if (of !== undefined) duplicate.push({ row: line, of });
    else {
      firstLine.set(e164, line);
      if (e164.startsWith('+447700')) flagged++;
    }
  }
  return {
    csv: `${lines.join('\n')}\n`,
    expected: { rowsRead: 1700, imported: firstLine.size, flagged, invalid, extensionDropped, duplicate, numbers: [...firstLine.keys()].sort() },
  };
}

const { csv, expected } = mixedCsv();

/** The report and the stored contacts, without what differs between two runs (ids, times). */
async function importMixed(h: Harness) {
  const { listId, report } = await listWithCsv(h, 'mixed', csv);
  const { jobId: _jobId, listId: _listId, startedAt: _startedAt, finishedAt: _finishedAt, ...rest } = report;
  const stored = await h.store.collection('contacts').find({ listId }).toArray();
  const contacts = stored
    .map(({ number, name, country, flagged, importRow }) => ({ number, name, country, flagged, importRow }))
    .sort((a, b) => String(a.number).localeCompare(String(b.number)));
  return { report: rest, contacts };
}

describe('an import over several batches', () => {
  let inline: Harness;
  let threaded: Harness;
  beforeAll(async () => {
    inline = await startHarness();
    threaded = await startHarness({ importThreads: 1 });
  });
  afterAll(async () => {
    await inline?.close();
    await threaded?.close();
  });

  it('reports every row at its line, in order, whether numbers are normalised inline or on a worker thread', async () => {
    const a = await importMixed(inline);
    const b = await importMixed(threaded);
    // The worker thread did the work (it started, and still runs).
    expect(threaded.normaliser?.running()).toBe(1);

    expect(a.report).toMatchObject({
      status: 'completed',
      rowsRead: expected.rowsRead,
      imported: expected.imported,
      flagged: expected.flagged,
      invalidCount: expected.invalid.length,
      invalid: expected.invalid,
      extensionDroppedCount: expected.extensionDropped.length,
      extensionDropped: expected.extensionDropped,
      duplicateCount: expected.duplicate.length,
    });
    // Repeats are listed per written batch; as a set they are exactly the repeated rows.
    expect([...a.report.duplicate].sort((x, y) => x.row - y.row)).toEqual(expected.duplicate);
    expect(a.contacts.map((c) => c.number)).toEqual(expected.numbers);

    // Inline and threaded imports agree entry for entry, in the same order.
    expect(b.report).toEqual(a.report);
    expect(b.contacts).toEqual(a.contacts);
  });

  it('still counts every row read when the file turns out unreadable after several batches', async () => {
    const rows = Array.from({ length: 1200 }, (_, i) => (i % 100 === 9 ? `P${i},n/a` : `P${i},020 7946 0${pad(i % 1000, 3)}`));
    const csv = `name,phone\n${rows.join('\n')}\n"unclosed,+1 212 555 0150\nQ,+1 212 555 0151\n`;
    const failed = async (h: Harness, jobId: string) => {
      const list = await h.http('POST', '/v1/lists', { name: 'broken' });
      const res = await h.http('POST', `/v1/lists/${list.body.id}/import?jobId=${jobId}&defaultCountry=GB`, csv, { 'content-type': 'text/csv' });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_csv');
      const { jobId: _jobId, listId: _listId, startedAt: _startedAt, finishedAt: _finishedAt, error: _error, ...report } = (await h.http('GET', `/v1/imports/${jobId}`)).body;
      return report;
    };
    const a = await failed(inline, 'job-broken-inline');
    expect(a).toMatchObject({ status: 'failed', rowsRead: 1200, invalidCount: 12 });
    expect(a.invalid.map((entry: { row: number }) => entry.row)).toEqual(Array.from({ length: 12 }, (_, k) => k * 100 + 11));
    expect(await failed(threaded, 'job-broken-threaded')).toEqual(a);
  });
});
