import { generateKeyPairSync } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, importPKCS8 } from 'jose';
import { listen } from '@clarion/http';
import { createVoiceSim, simSettings, type SimSettingsInput } from '@clarion/voice-sim';

const APP_ID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });

/** One delivery attempt as voice-sim's fetch saw it (url, method and the reply status). */
export interface Seen {
  url: string;
  method: string;
  status: number | undefined;
}

/** A ground-truth call from `GET /_sim/calls`. */
export interface TruthCall {
  uuid: string;
  to: string;
  outcome: string;
  ended_at: string | null;
  digits: string | null;
  duration: number;
  answer: { ok: boolean; http_status: number | null } | null;
  events: { status: string; delivered: boolean; http_status: number | null; attempts: number; duplicate?: boolean }[];
}

export interface SimOptions {
  signatureSecret?: string;
  settings?: SimSettingsInput;
  /** Shift voice-sim's clock (signs stale webhooks). */
  clockOffsetMs?: number;
  /** Rewrite a request body before it is sent (after signing): simulates tampering in transit. */
  tamper?: (url: string, body: string) => string;
  /** Hold a reply with this status for a while before voice-sim sees it (a retry back-off). */
  backoff?: { status: number; ms: number };
}

/** A real voice-sim on a loopback port whose webhooks go through a recording fetch. */
export async function startSim(options: SimOptions = {}) {
  const seen: Seen[] = [];
  const offset = options.clockOffsetMs ?? 0;
  const recordingFetch: typeof fetch = async (input, init) => {
    const url = String(input);
    let body = init?.body;
    if (options.tamper && typeof body === 'string') body = options.tamper(url, body);
    const entry: Seen = { url, method: init?.method ?? 'GET', status: undefined };
    seen.push(entry);
    const res = await fetch(input, { ...init, ...(body !== undefined ? { body } : {}) });
    entry.status = res.status;
    if (options.backoff && res.status === options.backoff.status) await new Promise((resolve) => setTimeout(resolve, options.backoff!.ms));
    return res;
  };
  const sim = createVoiceSim({
    config: {
      port: 0,
      host: '127.0.0.1',
      applicationId: APP_ID,
      publicKeyPem: keys.publicKey,
      apiKey: 'simkey',
      signatureSecret: options.signatureSecret,
      logLevel: 'silent',
      sim: simSettings({ cps: 0, timeScale: 0.01, ...options.settings }),
    },
    clock: { now: () => Date.now() + offset },
    fetch: recordingFetch,
  });
  const server: Server = await listen(sim.app, 0, '127.0.0.1');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const key = await importPKCS8(keys.privateKey, 'RS256');
  return {
    base,
    seen,
    /** Place a call whose answer and event webhooks go to `webhookBase` with the attempt's ids. */
    async place(webhookBase: string, ids: { b: string; c: string; a?: number; v?: string }, number: string): Promise<string> {
      const iat = Math.floor((Date.now() + offset) / 1000);
      const token = await new SignJWT({ application_id: APP_ID, jti: crypto.randomUUID(), iat, exp: iat + 900 }).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(key);
      const q = new URLSearchParams({ b: ids.b, c: ids.c, a: String(ids.a ?? 1) });
      const body = {
        to: [{ type: 'phone', number }],
        from: { type: 'phone', number: '14155550199' },
        answer_url: [`${webhookBase}/webhooks/answer?${q.toString()}${ids.v ? `&v=${ids.v}` : ''}`],
        event_url: [`${webhookBase}/webhooks/event?${q.toString()}`],
        machine_detection: 'continue',
      };
      const res = await fetch(`${base}/v1/calls`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
      if (res.status !== 201) throw new Error(`voice-sim refused the call: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { uuid: string }).uuid;
    },
    async calls(): Promise<TruthCall[]> {
      return ((await (await fetch(`${base}/_sim/calls`)).json()) as { calls: TruthCall[] }).calls;
    },
    /** Every placed call has ended and every webhook of it has been tried. */
    async settled(count: number): Promise<TruthCall[] | undefined> {
      const calls = await this.calls();
      const done = calls.length === count && calls.every((c) => c.ended_at !== null && c.events.length > 0 && c.events.every((e) => e.attempts > 0));
      return done ? calls : undefined;
    },
    async configure(patch: SimSettingsInput): Promise<void> {
      const res = await fetch(`${base}/_sim/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
      if (!res.ok) throw new Error(`voice-sim config refused: ${await res.text()}`);
    },
    async close(): Promise<void> {
      await sim.stop();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
export type Sim = Awaited<ReturnType<typeof startSim>>;

/** The statuses voice-sim delivered for a call (first copies only), sorted, as the stream should hold them. */
export const deliveredStatuses = (call: TruthCall): string[] =>
  call.events.filter((e) => e.delivered && !e.duplicate).map((e) => e.status).sort();
