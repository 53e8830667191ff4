import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import {
  attemptEventSubject,
  broadcastEventSubject,
  callEventSubject,
  contactFinalSubject,
  dialJobSubject,
  keypressSubject,
  type AttemptOutcome,
  type DialJob,
  type FinalState,
  type StreamEvent,
} from '@clarion/contracts';
import { listen } from '@clarion/http';
import { createLogger } from '@clarion/logging';
import { connectNats, jetstream, publishJson, type NatsConnection } from '@clarion/nats';
import { createEmbeddedStore, createMongoStore, type Store } from '@clarion/store';
import { startNatsServer, type NatsServerHandle } from '@clarion/testkit';
import { createReporter, type Reporter } from '../src/app.js';

export const TOKEN = 'test-token-0123456789';

/** A running reporter against a private nats-server and an embedded store. */
export interface Harness {
  nats: NatsServerHandle;
  nc: NatsConnection;
  store: Store;
  reporter: Reporter;
  server: Server;
  base: string;
  logs: Record<string, unknown>[];
  publish(item: StreamEvent | DialJob): Promise<void>;
  get<T = unknown>(path: string): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

const mongoUrl = process.env.MONGO_URL;
if (!mongoUrl) console.warn('MONGO_URL not set: the reporter tests run on the embedded store only (MongoDB SKIPPED)');

/** A store the reporter tests run on: always the embedded store, and MongoDB too when MONGO_URL is set. */
export interface StoreImpl {
  name: 'embedded' | 'mongodb';
  open(): Promise<Store>;
}
let dbSeq = 0;
export const STORES: StoreImpl[] = [{ name: 'embedded', open: () => createEmbeddedStore() }];
if (mongoUrl) {
  // A fresh database per harness, so runs never see each other's records.
  STORES.push({ name: 'mongodb', open: () => createMongoStore({ url: mongoUrl, dbName: `clarion_reporter_test_${process.pid}_${Date.now()}_${++dbSeq}` }) });
}

/** Start everything the way main.ts does, but on free ports and with captured logs. */
export async function startHarness(openStore: () => Promise<Store> = () => createEmbeddedStore()): Promise<Harness> {
  const nats = await startNatsServer();
  const nc = await connectNats({ servers: nats.url, name: 'reporter-test' });
  const store = await openStore();
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ service: 'reporter', level: 'info', destination });
  const reporter = createReporter({ nc, store, logger, apiToken: TOKEN, batchSize: 200, batchMs: 10, controlTimeoutMs: 1000 });
  await reporter.start();
  const server = await listen(reporter.app, 0, '127.0.0.1');
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const js = jetstream(nc);
  return {
    nats,
    nc,
    store,
    reporter,
    server,
    base,
    logs,
    async publish(item) {
      await publishJson(js, subjectOf(item), item);
    },
    async get<T>(path: string) {
      const res = await fetch(base + path, { headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await res.text();
      return { status: res.status, body: (res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T };
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await reporter.stop();
      await nc.drain();
      await store.close();
      await nats.dispose();
    },
  };
}

/** The subject each producer publishes a message on. */
export function subjectOf(item: StreamEvent | DialJob): string {
  if (!('kind' in item)) return dialJobSubject(item.broadcastId);
  switch (item.kind) {
    case 'broadcast':
      return broadcastEventSubject(item.broadcastId);
    case 'attempt':
      return attemptEventSubject(item.broadcastId);
    case 'call':
      return callEventSubject(item.broadcastId);
    case 'keypress':
      return keypressSubject(item.broadcastId);
    case 'contact':
      return contactFinalSubject(item.broadcastId);
  }
}

/** A deterministic shuffle (mulberry32), so a failing order can be replayed. */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const T0 = Date.parse('2026-03-02T10:00:00.000Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();

/**
 * A recorded broadcast of 7 people: acknowledged, busy-then-answered, no answer, invalid number,
 * voicemail with an unknown provider status, one suppressed and one duplicate.
 * Call events of one attempt share timestamps on purpose.
 */
export function recordedBroadcast(bid: string): (StreamEvent | DialJob)[] {
  const out: (StreamEvent | DialJob)[] = [];
  const num = (i: number) => `+1202555010${i}`;
  out.push({ kind: 'broadcast', broadcastId: bid, type: 'created', at: at(0), name: `Flood warning ${bid}`, priority: 'critical' });
  out.push({
    kind: 'broadcast',
    broadcastId: bid,
    type: 'enqueued',
    at: at(1),
    name: `Flood warning ${bid}`,
    counts: { accepted: 5, invalid: 1, duplicate: 1, suppressed: 1 },
  });
  const call = (cid: string, attempt: number, statuses: { status: string; detail?: string; digits?: string; duration?: number; price?: number }[], t: number) => {
    const uuid = `${bid}-${cid}-${attempt}`;
    for (const s of statuses) {
      out.push({
        kind: 'call',
        broadcastId: bid,
        contactId: cid,
        attempt,
        uuid,
        status: s.status,
        ...(s.detail ? { detail: s.detail } : {}),
        ...(s.digits ? { digits: s.digits } : {}),
        ...(s.duration !== undefined ? { duration: s.duration } : {}),
        ...(s.price !== undefined ? { price: s.price } : {}),
        timestamp: at(t),
        receivedAt: at(t),
        raw: { status: s.status },
      });
    }
  };
  const attempt = (cid: string, n: number, i: number, t: number, outcome: AttemptOutcome, retryAt?: number) => {
    out.push({ kind: 'attempt', broadcastId: bid, contactId: cid, attempt: n, number: num(i), phase: 'placed', at: at(t), uuid: `${bid}-${cid}-${n}` });
    out.push({
      kind: 'attempt',
      broadcastId: bid,
      contactId: cid,
      attempt: n,
      number: num(i),
      phase: 'outcome',
      at: at(t + 20),
      outcome,
      ...(retryAt !== undefined ? { retryAt } : {}),
    });
  };
  const job = (cid: string, i: number) => out.push({ broadcastId: bid, contactId: cid, number: num(i), attempt: 1, name: `Person ${i}` });
  const final = (cid: string, i: number, state: FinalState, attempts: number, t: number) =>
    out.push({ kind: 'contact', broadcastId: bid, contactId: cid, number: num(i), state, attempts, at: at(t) });

  job('c1', 1);
  attempt('c1', 1, 1, 2, 'acknowledged');
  call('c1', 1, [{ status: 'started' }, { status: 'ringing' }, { status: 'answered' }, { status: 'human' }, { status: 'input', digits: '1' }, { status: 'completed', duration: 12, price: 0.01 }], 3);
  out.push({ kind: 'keypress', broadcastId: bid, contactId: 'c1', attempt: 1, uuid: `${bid}-c1-1`, meaning: 'acknowledge', digits: '1', at: at(5) });
  final('c1', 1, 'acknowledged', 1, 30);

  job('c2', 2);
  attempt('c2', 1, 2, 2, 'busy', T0 + 300_000);
  call('c2', 1, [{ status: 'started' }, { status: 'busy' }, { status: 'completed' }], 3);
  attempt('c2', 2, 2, 300, 'answered');
  call('c2', 2, [{ status: 'started' }, { status: 'ringing' }, { status: 'answered' }, { status: 'completed', duration: 20 }], 301);
  final('c2', 2, 'answered', 2, 330);

  job('c3', 3);
  attempt('c3', 1, 3, 2, 'no_answer');
  call('c3', 1, [{ status: 'started' }, { status: 'ringing' }, { status: 'timeout' }, { status: 'completed' }], 3);
  final('c3', 3, 'no_answer', 1, 40);

  job('c4', 4);
  attempt('c4', 1, 4, 2, 'invalid_number');
  call('c4', 1, [{ status: 'started' }, { status: 'rejected', detail: 'invalid_number' }], 3);
  final('c4', 4, 'invalid_number', 1, 41);

  job('c5', 5);
  attempt('c5', 1, 5, 2, 'voicemail');
  call('c5', 1, [{ status: 'started' }, { status: 'answered' }, { status: 'machine' }, { status: 'weird_new_status' }, { status: 'completed' }], 3);
  final('c5', 5, 'voicemail', 1, 42);

  final('c6', 6, 'suppressed', 0, 1);
  final('c7', 7, 'duplicate', 0, 1);
  return out;
}
