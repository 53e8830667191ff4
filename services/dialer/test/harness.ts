import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BUCKETS,
  BroadcastRequest,
  callEventSubject,
  dialJobSubject,
  type BroadcastControlState,
  type BroadcastRequestInput,
  type BroadcastSpec,
  type CallEvent,
  type DialJob,
} from '@clarion/contracts';
import { createLogger } from '@clarion/logging';
import {
  connectNats,
  ensureBuckets,
  ensureStreams,
  jetstream,
  publishJson,
  type Buckets,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
} from '@clarion/nats';
import { startNatsServer, type NatsServerHandle } from '@clarion/testkit';
import { createVoiceClient } from '@clarion/voice-client';
import { createDialer, type Dialer, type DialerSettings } from '../src/index.js';

export const { privateKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

/** One create request seen by the fake Voice API. */
export interface SeenCall {
  at: number;
  body: {
    to: { number: string }[];
    answer_url: string[];
    event_url: string[];
    random_from_number?: boolean;
    from?: { number: string };
    ringing_timer?: number;
    machine_detection?: string;
  };
  b: string;
  c: string;
  a: number;
  uuid: string;
  status: number;
}

export type FakeReply = { status: number; body?: unknown; delayMs?: number } | 'hang';

/** A small stand-in for POST /v1/calls whose answers each test chooses. */
export class FakeVoiceApi {
  readonly calls: SeenCall[] = [];
  reply: (call: Omit<SeenCall, 'status' | 'uuid'>, index: number) => FakeReply = () => ({ status: 201 });
  /** Uuids asked for with `GET /v1/calls/{uuid}`, in order. */
  readonly lookups: string[] = [];
  /** The answer to `GET /v1/calls/{uuid}`; by default the call is unknown (404). */
  lookup: (uuid: string) => FakeReply = () => ({ status: 404, body: { title: 'Not found' } });
  /** Told of each call created (answered 201), as the provider starts it. */
  onCreated: ((call: SeenCall) => void) | undefined;
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      req.on('end', () => {
        const get = req.method === 'GET' ? /^\/v1\/calls\/([^/?]+)$/.exec(req.url ?? '') : null;
        if (get) {
          const uuid = decodeURIComponent(get[1]!);
          this.lookups.push(uuid);
          const answer = this.lookup(uuid);
          if (answer === 'hang') return;
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(answer.body ?? {}));
          return;
        }
        if (req.method !== 'POST' || req.url !== '/v1/calls') {
          res.writeHead(404).end();
          return;
        }
        const body = JSON.parse(raw) as SeenCall['body'];
        const eventUrl = new URL(body.event_url[0]!);
        const seen = {
          at: Date.now(),
          body,
          b: eventUrl.searchParams.get('b')!,
          c: eventUrl.searchParams.get('c')!,
          a: Number(eventUrl.searchParams.get('a')),
        };
        const reply = this.reply(seen, this.calls.length);
        const uuid = randomUUID();
        const call = { ...seen, uuid, status: reply === 'hang' ? 0 : reply.status };
        this.calls.push(call);
        if (call.status === 201) this.onCreated?.(call);
        if (reply === 'hang') return; // never answers: the client times out after sending
        const send = () => {
          res.writeHead(reply.status, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify(
              reply.body ?? (reply.status === 201 ? { uuid, status: 'started', direction: 'outbound', conversation_uuid: `CON-${uuid}` } : { title: 'error' }),
            ),
          );
        };
        if (reply.delayMs) setTimeout(send, reply.delayMs);
        else send();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  callsFor(broadcastId: string): SeenCall[] {
    return this.calls.filter((c) => c.b === broadcastId);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

/** A private NATS with Clarion's topology, an event recorder and a fake Voice API. */
export class World {
  nats!: NatsServerHandle;
  nc!: NatsConnection;
  js!: JetStreamClient;
  jsm!: JetStreamManager;
  buckets!: Buckets;
  api = new FakeVoiceApi();
  events: { subject: string; data: Record<string, unknown> }[] = [];
  private dialers: Dialer[] = [];
  private connections: NatsConnection[] = [];

  async start(): Promise<void> {
    this.nats = await startNatsServer();
    this.nc = await connectNats({ servers: this.nats.url, name: 'test' });
    this.jsm = await ensureStreams(this.nc);
    this.buckets = await ensureBuckets(this.nc);
    this.js = jetstream(this.nc);
    // Read what the EVENTS stream stored (duplicates by message id are dropped there, as the reporter sees it).
    const ordered = await this.js.consumers.get('EVENTS');
    const messages = await ordered.consume();
    void (async () => {
      for await (const msg of messages) this.events.push({ subject: msg.subject, data: msg.json<Record<string, unknown>>() });
    })();
    await this.api.start();
  }

  /** Start a dialer replica on its own connection (as a separate process would). */
  async dialer(settings: Partial<DialerSettings> = {}, voiceTimeoutMs = 2000): Promise<Dialer> {
    const nc = await connectNats({ servers: this.nats.url, name: 'dialer-test' });
    this.connections.push(nc);
    const dialer = createDialer({
      nc,
      js: jetstream(nc),
      jsm: await ensureStreams(nc),
      buckets: await ensureBuckets(nc),
      voice: createVoiceClient({ baseUrl: this.api.url, applicationId: 'app-test', privateKey, timeoutMs: voiceTimeoutMs }),
      logger: createLogger({ service: 'dialer-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      settings: {
        webhookPublicUrl: 'http://127.0.0.1:9/hooks',
        accountCps: 50,
        accountMaxConcurrent: 1000,
        ambiguityTimeoutMs: 60_000,
        claimGraceMs: 10_000,
        callSlotTimeoutMs: 60_000,
        breakerCooldownMs: 60_000,
        ringingTimerSeconds: 45,
        lengthTimerSeconds: 600,
        rateLimitBackoffMs: 100,
        outcomeSettleMs: 200,
        ...settings,
      },
    });
    await dialer.start();
    this.dialers.push(dialer);
    return dialer;
  }

  async stopDialers(): Promise<void> {
    await Promise.all(this.dialers.splice(0).map((d) => d.stop()));
    await Promise.all(this.connections.splice(0).map((nc) => nc.close()));
  }

  /** Forget every call slot (between tests, with no dialer running: calls left open would count). */
  async resetSlots(): Promise<void> {
    await this.jsm.streams.purge(`KV_${BUCKETS.slots}`);
  }

  async broadcast(id: string, input: Partial<BroadcastRequestInput> = {}, status: BroadcastControlState['status'] = 'running'): Promise<BroadcastSpec> {
    const request = BroadcastRequest.parse({
      name: `test ${id}`,
      message: { text: 'Water main burst on Elm Street.' },
      audience: { numbers: ['+14155550100'] },
      ...input,
    });
    const spec: BroadcastSpec = { id, createdAt: new Date().toISOString(), request };
    await this.setControl(id, status);
    await this.buckets.broadcasts.put(id, JSON.stringify(spec));
    return spec;
  }

  async setControl(id: string, status: BroadcastControlState['status'], reason?: string): Promise<void> {
    const state: BroadcastControlState = { broadcastId: id, status, at: new Date().toISOString(), ...(reason ? { reason } : {}) };
    await this.buckets.control.put(id, JSON.stringify(state));
  }

  async control(id: string): Promise<BroadcastControlState | undefined> {
    const entry = await this.buckets.control.get(id);
    return entry ? entry.json<BroadcastControlState>() : undefined;
  }

  /** Enqueue attempt-1 jobs for contacts c0..c(n-1) with fictional numbers. */
  async jobs(broadcastId: string, count: number, extra: Partial<DialJob> = {}, offset = 0): Promise<DialJob[]> {
    const jobs: DialJob[] = [];
    for (let i = offset; i < offset + count; i += 1) {
      const job: DialJob = {
        broadcastId,
        contactId: `c${i}`,
        number: `+1415555${String(100 + (i % 100)).padStart(4, '0')}`,
        attempt: 1,
        name: `Person ${i}`,
        ...extra,
      };
      await publishJson(this.js, dialJobSubject(broadcastId), job, `${broadcastId}.${job.contactId}.1`);
      jobs.push(job);
    }
    return jobs;
  }

  /** Send the provider's events for one placed call, as the webhook service would. */
  async callEvents(call: SeenCall, statuses: (string | { status: string; digits?: string; detail?: string })[]): Promise<void> {
    let t = Date.now();
    for (const item of statuses) {
      const s = typeof item === 'string' ? { status: item } : item;
      const event: CallEvent = {
        kind: 'call',
        broadcastId: call.b,
        contactId: call.c,
        attempt: call.a,
        uuid: call.uuid,
        status: s.status,
        timestamp: new Date(t++).toISOString(),
        receivedAt: new Date().toISOString(),
        raw: { status: s.status },
        ...(s.digits ? { digits: s.digits } : {}),
        ...(s.detail ? { detail: s.detail } : {}),
      };
      await publishJson(this.js, callEventSubject(call.b), event, `${call.uuid}.${s.status}.${event.timestamp}`);
    }
  }

  of(kind: string, broadcastId: string): Record<string, unknown>[] {
    return this.events.filter((e) => e.data.kind === kind && e.data.broadcastId === broadcastId).map((e) => e.data);
  }

  async stop(): Promise<void> {
    await this.stopDialers();
    await this.api.stop();
    await this.nc?.close();
    await this.nats?.dispose();
  }
}
