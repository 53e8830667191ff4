import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BroadcastRequestInput, BroadcastSpec } from '@clarion/contracts';
import { BroadcastRequest, STREAMS } from '@clarion/contracts';
import { createLogger } from '@clarion/logging';
import { connectNats, ensureBuckets, ensureStreams, jetstream, type Buckets, type JetStreamManager, type NatsConnection } from '@clarion/nats';
import { SignJWT } from 'jose';
import { createWebhookApp, type WebhookApp, type WebhookSettings } from '../src/app.js';
import { payloadHash } from '../src/signature.js';

export const PUBLIC_URL = 'https://hooks.example.test';

export interface Harness {
  base: string;
  nc: NatsConnection;
  jsm: JetStreamManager;
  buckets: Buckets;
  webhook: WebhookApp;
  /** Store a BroadcastSpec in KV, as the contacts service would. */
  putSpec(id: string, request: BroadcastRequestInput): Promise<BroadcastSpec>;
  /** Every message stored on `subject` in the EVENTS stream, decoded. */
  messages(subject: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/**
 * The app on a listening loopback port against a test NATS. `settings` may be a function of the
 * app's own base URL (a real Voice API such as voice-sim must reach the input eventUrl).
 */
export async function startHarness(
  natsUrl: string,
  settings: Partial<WebhookSettings> | ((base: string) => Partial<WebhookSettings>) = {},
  clock?: () => number,
): Promise<Harness> {
  const nc = await connectNats({ servers: natsUrl, name: 'webhook-test' });
  const jsm = await ensureStreams(nc);
  const buckets = await ensureBuckets(nc);
  // Listen first so the base URL is known before the app is built.
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const webhook = createWebhookApp({
    nc,
    js: jetstream(nc),
    broadcasts: buckets.broadcasts,
    logger: createLogger({ service: 'webhook-test', level: 'silent' }),
    settings: { publicUrl: PUBLIC_URL, ...(typeof settings === 'function' ? settings(base) : settings) },
    ...(clock ? { clock } : {}),
  });
  await webhook.specs.ready;
  server.on('request', webhook.app.callback());
  return {
    base,
    nc,
    jsm,
    buckets,
    webhook,
    async putSpec(id, request) {
      const spec: BroadcastSpec = { id, createdAt: new Date().toISOString(), request: BroadcastRequest.parse(request) };
      await buckets.broadcasts.put(id, JSON.stringify(spec));
      return spec;
    },
    async messages(subject) {
      const info = await jsm.streams.info(STREAMS.events.name);
      const out: Record<string, unknown>[] = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const msg = await jsm.streams.getMessage(STREAMS.events.name, { seq }).catch(() => null);
        if (msg?.subject === subject) out.push(msg.json<Record<string, unknown>>());
      }
      return out;
    },
    async close() {
      await webhook.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await nc.drain().catch(() => undefined);
    },
  };
}

/** A Vonage-style signed-webhook JWT over `body`. */
export async function signWebhook(secret: string, body: string, iatSeconds: number): Promise<string> {
  return new SignJWT({ payload_hash: payloadHash(body), api_key: 'abcd1234', application_id: 'app-1' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(iatSeconds)
    .setIssuer('Vonage')
    .setJti(crypto.randomUUID())
    .sign(new TextEncoder().encode(secret));
}

/** A minimal valid broadcast request. */
export const request = (overrides: Partial<BroadcastRequestInput> = {}): BroadcastRequestInput => ({
  name: 'Water outage',
  message: { text: 'Hello {{name}}, water is off in {{area}} until {{until}}.' },
  audience: { numbers: ['+14155550100'] },
  ...overrides,
});

export const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
