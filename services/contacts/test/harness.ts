import { createLogger } from '@clarion/logging';
import {
  connectNats,
  encodeJson,
  ensureBuckets,
  ensureStreams,
  jetstream,
  type Buckets,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
} from '@clarion/nats';
import { createNormaliserPool, type NormaliserPool } from '@clarion/phone';
import { createEmbeddedStore, type Store } from '@clarion/store';
import { startNatsServer, type NatsServerHandle } from '@clarion/testkit';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { createContactsService, type ContactsService } from '../src/app.js';
import { ensureContactsConsumers } from '../src/nats-handlers.js';
import { ensureIndexes } from '../src/repo.js';

export const TOKEN = 'test-token-123456';

/** A running contacts service on a private nats-server and an embedded store, over real HTTP. */
export interface Harness {
  url: string;
  nats: NatsServerHandle;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: Buckets;
  store: Store;
  service: ContactsService;
  /** The import worker threads, when started with `importThreads`. */
  normaliser: NormaliserPool | undefined;
  http(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  request(subject: string, body: unknown): Promise<any>;
  close(): Promise<void>;
}

const quiet = new Writable({ write: (_chunk, _enc, done) => done() });

export async function startHarness(options: { maxImportBytes?: number; importThreads?: number } = {}): Promise<Harness> {
  const nats = await startNatsServer();
  const nc = await connectNats({ servers: nats.url, name: 'contacts-test' });
  const jsm = await ensureStreams(nc);
  const kv = await ensureBuckets(nc);
  await ensureContactsConsumers(jsm);
  const store = await createEmbeddedStore();
  await ensureIndexes(store);
  const js = jetstream(nc);
  const normaliser = options.importThreads ? createNormaliserPool({ threads: options.importThreads }) : undefined;
  const service = createContactsService({
    nc,
    js,
    kv,
    store,
    logger: createLogger({ service: 'contacts', level: 'silent', destination: quiet }),
    apiToken: TOKEN,
    defaultCountry: 'US',
    maxImportBytes: options.maxImportBytes ?? 1_000_000,
    ...(normaliser ? { normaliser } : {}),
  });
  service.start();
  const server: Server = await new Promise((resolve) => {
    const s = service.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    url,
    nats,
    nc,
    js,
    jsm,
    kv,
    store,
    service,
    normaliser,
    async http(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { authorization: `Bearer ${TOKEN}`, ...headers } };
      if (body !== undefined) {
        if (typeof body === 'string' || body instanceof Uint8Array) init.body = body;
        else {
          init.body = JSON.stringify(body);
          (init.headers as Record<string, string>)['content-type'] = 'application/json';
        }
      }
      const response = await fetch(`${url}${path}`, init);
      const text = await response.text();
      return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
    },
    async request(subject, body) {
      const data = typeof body === 'string' ? body : encodeJson(body);
      const reply = await nc.request(subject, data, { timeout: 20_000 });
      return reply.json();
    },
    async close() {
      await service.stop();
      await new Promise((resolve) => server.close(resolve));
      await nc.drain();
      await store.close();
      await normaliser?.close();
      await nats.dispose();
    },
  };
}

/** Every message on one subject of a stream, decoded. */
export async function readSubject(h: Harness, stream: string, subject: string): Promise<{ data: any; msgId: string | undefined }[]> {
  const info = await h.jsm.streams.info(stream, { subjects_filter: subject });
  const count = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  if (count === 0) return [];
  const consumer = await h.js.consumers.get(stream, { filter_subjects: subject });
  const out: { data: any; msgId: string | undefined }[] = [];
  const messages = await consumer.fetch({ max_messages: count, expires: 5000 });
  for await (const m of messages) {
    out.push({ data: m.json(), msgId: m.headers?.get('Nats-Msg-Id') });
    if (out.length >= count) break;
  }
  return out;
}

/** Create a list and import CSV text into it; returns the list id and the report. */
export async function listWithCsv(h: Harness, name: string, csv: string, query = ''): Promise<{ listId: string; report: any }> {
  const list = await h.http('POST', '/v1/lists', { name });
  const res = await h.http('POST', `/v1/lists/${list.body.id}/import${query}`, csv, { 'content-type': 'text/csv' });
  if (res.status !== 200) throw new Error(`import failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { listId: list.body.id, report: res.body };
}
