import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { freePort, startNatsServer, type NatsServerHandle } from '@clarion/nats';
import { startServiceProcess, type ServiceProcess } from '@clarion/testkit';
import { REPO_ROOT } from '../stack.js';
import type { Bench } from './types.js';

/** 100 real US area codes for the volume numbers: × 10,000 last-four digits = 1,000,000 numbers. */
const AREAS = (
  '201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 220 223 224 225 228 229 231 234 ' +
  '239 240 248 251 252 253 254 256 260 262 267 269 270 272 276 279 281 301 302 303 304 305 307 308 309 ' +
  '310 312 313 314 315 316 317 318 319 320 321 323 325 330 331 332 334 336 337 339 346 347 351 352 360 ' +
  '361 385 386 401 402 404 405 406 407 408 409 410 412 413 414 415 417 419 423 424 425 430 432 434 435'
).split(' ');

/**
 * The i-th volume-bench number, national format. Benchmarks only: +1 NXX 555 XXXX with any last four
 * digits, because 555 numbers outside 01XX are not assigned to subscribers either and 1,000,000
 * distinct numbers do not fit in the fictional 555-01XX blocks.
 */
export function volumeNumber(i: number): string {
  const area = AREAS[Math.floor(i / 10_000) % AREAS.length] as string;
  return `(${area}) 555-${String(i % 10_000).padStart(4, '0')}`;
}

/** Most distinct numbers `volumeNumber` yields. */
export const VOLUME_LIMIT = AREAS.length * 10_000;

/** Write a CSV of `rows` contacts (name, phone, country, a variable) to `path`; returns its bytes. */
export async function writeContactsCsv(path: string, rows: number): Promise<number> {
  if (rows > VOLUME_LIMIT) throw new RangeError(`at most ${VOLUME_LIMIT} rows`);
  const out = createWriteStream(path);
  out.write('Name,Phone,Country,Site\n');
  let chunk = '';
  for (let i = 0; i < rows; i++) {
    chunk += `Person ${i},"${volumeNumber(i)}",US,Site ${i % 50}\n`;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  return statSync(path).size;
}

/** RSS of a process in MB, from /proc (Linux); undefined elsewhere or once it exited. */
export function rssMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds (user + system, all threads) a process has used, from /proc (Linux, at the usual 100
 * clock ticks per second); undefined elsewhere or once it exited. On a shared machine the import's
 * wall time swings with other load; its CPU time much less.
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `intervalMs` until stopped; reports the peak and the samples' spread. */
export function sampleRss(pid: number | undefined, intervalMs = 250) {
  const samples: number[] = [];
  const take = () => {
    const mb = rssMb(pid);
    if (mb !== undefined) samples.push(mb);
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peakRssMb: Math.max(...samples), startRssMb: samples[0], endRssMb: samples[samples.length - 1], samples: samples.length };
    },
  };
}

export interface ContactsUnderTest {
  nats: NatsServerHandle;
  contacts: ServiceProcess;
  token: string;
  dir: string;
  stop(): Promise<void>;
}

/** A private nats-server and one contacts process (journaled embedded store), nothing else running. */
export async function startContacts(prefix: string, env: Record<string, string> = {}): Promise<ContactsUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const nats = await startNatsServer({ dataDir: join(dir, 'nats') });
  const token = 'bench-token-123';
  try {
    const contacts = await startServiceProcess({
      name: 'contacts',
      script: join(REPO_ROOT, 'services', 'contacts', 'dist', 'main.js'),
      env: { NATS_URL: nats.url, API_TOKEN: token, DATA_DIR: join(dir, 'store'), LOG_LEVEL: 'warn', HOST: '127.0.0.1', MAX_IMPORT_BYTES: String(2 ** 31), ...env },
      port: await freePort(),
      logFile: join(dir, 'contacts.log'),
      readyTimeoutMs: 60_000,
    });
    return {
      nats,
      contacts,
      token,
      dir,
      async stop() {
        await contacts.stop(5000);
        await nats.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** POST a file to the contacts import endpoint, streamed from disk; resolves with the import report. */
export async function postImport(service: ContactsUnderTest, listId: string, file: string): Promise<Record<string, unknown>> {
  const url = new URL(`${service.contacts.url}/v1/lists/${listId}/import?defaultCountry=US`);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { authorization: `Bearer ${service.token}`, 'content-type': 'text/csv', 'content-length': statSync(file).size } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (data: string) => (body += data));
        res.on('end', () => {
          if (res.statusCode !== 200 && res.statusCode !== 201) reject(new Error(`import failed: HTTP ${res.statusCode} ${body.slice(0, 500)}`));
          else resolve(JSON.parse(body) as Record<string, unknown>);
        });
      },
    );
    req.setTimeout(0);
    req.on('error', reject);
    createReadStream(file).pipe(req);
  });
}

/** Create a list over REST; returns its id. */
export async function createList(service: ContactsUnderTest, name: string): Promise<string> {
  const response = await fetch(`${service.contacts.url}/v1/lists`, {
    method: 'POST',
    headers: { authorization: `Bearer ${service.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`create list: HTTP ${response.status}`);
  return ((await response.json()) as { id: string }).id;
}

/**
 * CSV import through the contacts service (DESIGN.md §8: 1,000,000 rows ≤ 30 s, memory flat).
 * `npm run bench -- import [rows] [importThreads]`; peak RSS and CPU time are the contacts process's,
 * from /proc. `importThreads` sets the service's IMPORT_THREADS (its default when not given).
 */
export const run: Bench = async (args) => {
  const rows = Number(args[0] ?? 1_000_000);
  const threads = args[1];
  const service = await startContacts('clarion-bench-import-', threads === undefined ? {} : { IMPORT_THREADS: threads });
  try {
    const file = join(service.dir, 'contacts.csv');
    const bytes = await writeContactsCsv(file, rows);
    const listId = await createList(service, 'bench import');
    const rss = sampleRss(service.contacts.pid());
    const cpuBefore = cpuSeconds(service.contacts.pid()) ?? 0;
    const started = performance.now();
    const report = await postImport(service, listId, file);
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpuSeconds(service.contacts.pid());
    const memory = rss.stop();
    // The embedded store keeps the list in this process, so the first import's RSS grows with it. The
    // same file again stores nothing new: what its RSS does is the import pipeline's own memory.
    const again = sampleRss(service.contacts.pid());
    const againStarted = performance.now();
    const second = await postImport(service, listId, file);
    const againSeconds = (performance.now() - againStarted) / 1000;
    const againMemory = again.stop();
    return {
      rows,
      fileMb: Number((bytes / 1e6).toFixed(1)),
      importSeconds: Number(seconds.toFixed(2)),
      rowsPerSecond: Math.round(rows / seconds),
      importCpuSeconds: cpuAfter === undefined ? undefined : Number((cpuAfter - cpuBefore).toFixed(1)),
      importThreads: threads ?? 'default',
      ...memory,
      imported: report.imported,
      invalidCount: report.invalidCount,
      duplicateCount: report.duplicateCount,
      flagged: report.flagged,
      store: 'embedded (journaled)',
      sameFileAgain: {
        importSeconds: Number(againSeconds.toFixed(2)),
        imported: second.imported,
        duplicateCount: second.duplicateCount,
        ...againMemory,
        pipelineGrowthMb: againMemory.peakRssMb - (againMemory.startRssMb ?? againMemory.peakRssMb),
      },
    };
  } finally {
    await service.stop();
  }
};
