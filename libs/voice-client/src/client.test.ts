import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { importSPKI, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createVoiceClient, VoiceApiError, type CreateCallBody } from './index.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
let handler: Handler;
const seen: { auth: string; body: string }[] = [];
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization ?? '', body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen.length = 0;
});

const body: CreateCallBody = {
  to: [{ type: 'phone', number: '14155550100' }],
  random_from_number: true,
  answer_url: ['http://127.0.0.1:1/answer'],
  event_url: ['http://127.0.0.1:1/event'],
  ringing_timer: 45,
};

const reply = (status: number, json?: unknown): Handler => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(json === undefined ? '' : JSON.stringify(json));
};

async function failure(promise: Promise<unknown>): Promise<VoiceApiError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VoiceApiError);
    return error as VoiceApiError;
  }
  throw new Error('expected a VoiceApiError');
}

describe('createVoiceClient', () => {
  it('posts the body with an RS256 application JWT and returns the created call', async () => {
    handler = reply(201, { uuid: 'u-1', status: 'started', direction: 'outbound', conversation_uuid: 'CON-1' });
    const client = createVoiceClient({ baseUrl, applicationId: 'app-1', privateKey });
    const call = await client.createCall(body);
    expect(call).toEqual({ uuid: 'u-1', status: 'started', direction: 'outbound', conversation_uuid: 'CON-1' });
    expect(JSON.parse(seen[0]!.body)).toEqual(body);
    const token = seen[0]!.auth.replace(/^Bearer /, '');
    const { payload, protectedHeader } = await jwtVerify(token, await importSPKI(publicKey, 'RS256'));
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.application_id).toBe('app-1');
    expect(typeof payload.jti).toBe('string');
    expect(payload.exp! - payload.iat!).toBe(900);
  });

  it('reuses a token for a bounded time, then mints a new one', async () => {
    handler = reply(201, { uuid: 'u', status: 'started', direction: 'outbound', conversation_uuid: 'CON' });
    let now = 1_800_000_000_000;
    const client = createVoiceClient({ baseUrl, applicationId: 'app-1', privateKey, clock: () => now, tokenReuseMs: 30_000 });
    await Promise.all([client.createCall(body), client.createCall(body), client.createCall(body)]);
    now += 29_000;
    await client.createCall(body);
    now += 2_000;
    await client.createCall(body);
    const tokens = new Set(seen.map((s) => s.auth));
    expect(seen).toHaveLength(5);
    expect(tokens.size).toBe(2);
  });

  it.each([
    [429, 'rate_limited', false],
    [401, 'unauthorized', false],
    [403, 'forbidden', false],
    [402, 'payment_required', false],
    [400, 'invalid_request', false],
    [422, 'invalid_request', false],
    [404, 'not_found', false],
    [500, 'server_error', true],
    [503, 'server_error', true],
  ] as const)('maps HTTP %i to %s (ambiguous=%s)', async (status, code, ambiguous) => {
    handler = reply(status, { title: 'Bad', invalid_parameters: [{ name: 'to', reason: 'Invalid' }] });
    const client = createVoiceClient({ baseUrl, applicationId: 'app-1', privateKey });
    const error = await failure(client.createCall(body));
    expect(error.name).toBe('VoiceApiError');
    expect(error.code).toBe(code);
    expect(error.status).toBe(status);
    expect(error.ambiguous).toBe(ambiguous);
  });

  it('names the invalid parameter in a 400 message', async () => {
    handler = reply(400, { title: 'Bad Request', invalid_parameters: [{ name: 'to', reason: 'Invalid number' }] });
    const client = createVoiceClient({ baseUrl, applicationId: 'app-1', privateKey });
    expect((await failure(client.createCall(body))).message).toContain('to: Invalid number');
  });

  it('treats a timeout after sending as ambiguous', async () => {
    handler = () => undefined; // never answers
    const client = createVoiceClient({ baseUrl, applicationId: 'app-1', privateKey, timeoutMs: 200 });
    const error = await failure(client.createCall(body));
    expect(error.code).toBe('timeout');
    expect(error.ambiguous).toBe(true);
    server.closeAllConnections();
  });

  it('treats a connection reset after sending as ambiguous', async () => {
    handler = (req) => req.socket.destroy();
    const client = createVoiceClient({ baseUrl, applicationId: 'app-1', privateKey });
    const error = await failure(client.createCall(body));
    expect(error.code).toBe('network');
    expect(error.ambiguous).toBe(true);
  });

  it('treats a refused connection as not placed', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const client = createVoiceClient({ baseUrl: `http://127.0.0.1:${port}`, applicationId: 'app-1', privateKey });
    const error = await failure(client.createCall(body));
    expect(error.code).toBe('network');
    expect(error.ambiguous).toBe(false);
  });

  it('accepts a PKCS#1 key', async () => {
    const pkcs1 = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    handler = reply(201, { uuid: 'u-2', status: 'started', direction: 'outbound', conversation_uuid: 'CON-2' });
    const client = createVoiceClient({ baseUrl, applicationId: 'app-2', privateKey: pkcs1.privateKey });
    await client.createCall(body);
    const { payload } = await jwtVerify(seen[0]!.auth.slice(7), await importSPKI(pkcs1.publicKey, 'RS256'));
    expect(payload.application_id).toBe('app-2');
  });
});

describe('warmUp', () => {
  it('signs a token and connects without placing a call, and never throws', async () => {
    handler = reply(404);
    const client = createVoiceClient({ baseUrl, applicationId: 'app-1', privateKey });
    await client.warmUp();
    expect(seen).toHaveLength(1);
    const down = createVoiceClient({ baseUrl: 'http://127.0.0.1:1', applicationId: 'app-1', privateKey, timeoutMs: 500 });
    await expect(down.warmUp()).resolves.toBeUndefined();
  });
});

describe('getCall', () => {
  it('reads a call with an application JWT and returns its status', async () => {
    let path = '';
    handler = (req, res, b) => {
      path = `${req.method} ${req.url}`;
      reply(200, { uuid: 'u-9', status: 'busy', start_time: null, end_time: '2026-01-01T00:00:05.000Z', duration: '0' })(req, res, b);
    };
    const client = createVoiceClient({ baseUrl, applicationId: 'app-1', privateKey });
    const call = await client.getCall('u-9');
    expect(path).toBe('GET /v1/calls/u-9');
    expect(call).toMatchObject({ uuid: 'u-9', status: 'busy', endTime: '2026-01-01T00:00:05.000Z' });
    expect(call.startTime).toBeUndefined();
    const { payload } = await jwtVerify(seen[0]!.auth.replace(/^Bearer /, ''), await importSPKI(publicKey, 'RS256'));
    expect(payload.application_id).toBe('app-1');
  });

  it('reports an unknown call as not_found and never as ambiguous', async () => {
    handler = reply(404, { title: 'Not found', detail: 'Call u-0 was not found' });
    const client = createVoiceClient({ baseUrl, applicationId: 'app-1', privateKey });
    const error = await failure(client.getCall('u-0'));
    expect(error.code).toBe('not_found');
    expect(error.ambiguous).toBe(false);
    handler = reply(503, { title: 'down' });
    const down = await failure(client.getCall('u-0'));
    expect(down).toMatchObject({ code: 'server_error', ambiguous: false });
    handler = reply(200, { uuid: 'u-0' });
    expect((await failure(client.getCall('u-0'))).code).toBe('unexpected_response');
  });
});
