import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, importPKCS8 } from 'jose';
import { listen } from '@clarion/http';
import { createVoiceSim, type VoiceSim } from '../src/app.js';
import { simSettings, type SimSettingsInput, type VoiceSimConfig } from '../src/config.js';
import type { Clock } from '../src/sim.js';

export const APP_ID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
export const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
export const otherKeys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });

/** A clock tests move by hand. */
export function manualClock(start = Date.now()): Clock & { t: number; advance(ms: number): void } {
  const clock = { t: start, now: () => clock.t, advance: (ms: number) => void (clock.t += ms) };
  return clock;
}

/** An RS256 application token like the SDK mints. */
export async function appToken(options: { key?: string; claims?: Record<string, unknown>; iat?: number } = {}): Promise<string> {
  const key = await importPKCS8(options.key ?? keys.privateKey, 'RS256');
  const iat = options.iat ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ application_id: APP_ID, jti: crypto.randomUUID(), iat, exp: iat + 900, ...options.claims }).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(key);
}

export interface Received {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
  json: Record<string, unknown> | undefined;
}

type Handler = (req: Received, res: ServerResponse) => void | Promise<void>;

/** A real webhook receiver; `handler` decides each reply (default: 200 `[]` for answer, 204 otherwise). */
export async function startReceiver(handler?: Handler) {
  const received: Received[] = [];
  const state = { handler };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      let json: Record<string, unknown> | undefined;
      try {
        json = body ? (JSON.parse(body) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      const r: Received = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body, json };
      received.push(r);
      if (state.handler) return void Promise.resolve(state.handler(r, res)).catch(() => res.destroy());
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    received,
    state,
    events: (uuid?: string) => received.filter((r) => r.path === '/event' && (!uuid || r.json?.uuid === uuid || r.json?.call_uuid === uuid)),
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** Start voice-sim on a free port. */
export async function startSim(sim: SimSettingsInput = {}, extra: { clock?: Clock; signatureSecret?: string; logFile?: string } = {}) {
  const config: VoiceSimConfig = {
    port: 0,
    host: '127.0.0.1',
    applicationId: APP_ID,
    publicKeyPem: keys.publicKey,
    apiKey: 'simkey',
    signatureSecret: extra.signatureSecret,
    logFile: extra.logFile,
    logLevel: 'silent',
    sim: simSettings({ timeScale: 0, ...sim }),
  };
  const instance: VoiceSim = createVoiceSim({ config, ...(extra.clock ? { clock: extra.clock } : {}) });
  const server = await listen(instance.app, 0, '127.0.0.1');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    sim: instance,
    async close() {
      await instance.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async create(body: Record<string, unknown>, token?: string) {
      return fetch(`${base}/v1/calls`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token ?? (await appToken())}` }, body: JSON.stringify(body) });
    },
    async calls(): Promise<GroundTruthCall[]> {
      const res = await fetch(`${base}/_sim/calls`);
      return ((await res.json()) as { calls: GroundTruthCall[] }).calls;
    },
    async stats(): Promise<Record<string, unknown>> {
      return (await (await fetch(`${base}/_sim/stats`)).json()) as Record<string, unknown>;
    },
  };
}

export interface GroundTruthCall {
  uuid: string;
  conversation_uuid: string;
  to: string;
  outcome: string;
  status: string;
  ended_at: string | null;
  digits: string | null;
  answer: { attempts: number; fallback: boolean; ok: boolean } | null;
  events: { status: string; delivered: boolean; http_status: number | null; attempts: number; duplicate?: boolean }[];
}

/** A typical create body with inline NCCO asking for a key. */
export function callBody(to: string, eventBase: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    to: [{ type: 'phone', number: to }],
    from: { type: 'phone', number: '14155550100' },
    ncco: [
      { action: 'talk', text: 'Flood warning for your area. Press 1 to confirm.', bargeIn: false },
      { action: 'input', type: ['dtmf'], dtmf: { maxDigits: 1, timeOut: 5 } },
    ],
    event_url: [`${eventBase}/event`],
    ...extra,
  };
}
