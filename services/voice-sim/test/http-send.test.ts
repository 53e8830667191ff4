import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpSend } from '../src/http-send.js';
import { sendWebhook } from '../src/webhooks.js';

describe('httpSend (the webhook sender)', () => {
  let server: Server;
  let base: string;
  const seen: { method?: string; url?: string; body: string; type?: string; length?: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, body, type: req.headers['content-type'], length: req.headers['content-length'] });
        if (req.url?.startsWith('/slow')) return void setTimeout(() => res.end('late'), 2000);
        res.statusCode = req.url?.startsWith('/fail') ? 503 : 200;
        res.end(JSON.stringify({ got: body.length }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('posts a JSON body with its length and reads the reply', async () => {
    const body = JSON.stringify({ status: 'answered', text: 'Grüße' });
    const res = await httpSend(`${base}/event`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.ok).toBe(true);
    expect(res.status).toBe(200);
    expect(JSON.parse(await res.text())).toEqual({ got: body.length });
    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/event', body, type: 'application/json', length: String(Buffer.byteLength(body)) });
  });

  it('sends a GET with its query and reports a failing status as not ok', async () => {
    const res = await httpSend(`${base}/fail?uuid=abc&status=started`, { method: 'GET', headers: {} });
    expect(res.ok).toBe(false);
    expect(res.status).toBe(503);
    expect(seen.at(-1)).toMatchObject({ method: 'GET', url: '/fail?uuid=abc&status=started', body: '' });
  });

  it('gives up when its signal aborts, with the abort reason', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('timed out after 100 ms')), 100);
    await expect(httpSend(`${base}/slow`, { method: 'GET', headers: {}, signal: controller.signal })).rejects.toThrow('timed out after 100 ms');
  });

  it('fails on a refused connection', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(httpSend(`http://127.0.0.1:${port}/`, { method: 'GET', headers: {} })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('retries a webhook whose pooled connection failed on a new connection, not on another pooled one', async () => {
    // Connections numbered below `deadFrom` lead to a replica that died (as through a TCP load balancer
    // that pins each connection): any request on them is cut off. New connections reach a live one.
    let deadFrom = 0;
    const opened = new WeakMap<object, number>();
    let connections = 0;
    const pinned = createServer((req, res) => {
      if (opened.get(req.socket)! < deadFrom) return void req.socket.destroy();
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    pinned.on('connection', (socket) => opened.set(socket, (connections += 1)));
    await new Promise<void>((resolve) => pinned.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(pinned.address() as AddressInfo).port}/event`;
    try {
      // Four pooled keep-alive connections, then the replica behind them dies.
      await Promise.all([1, 2, 3, 4].map(() => httpSend(url, { method: 'POST', headers: {}, body: '{}' })));
      deadFrom = connections + 1;
      const result = await sendWebhook(
        { url, method: 'POST', payload: { status: 'answered' }, timeoutMs: 2000, attempts: 2, retryStatus: () => true },
        { fetch: httpSend, now: Date.now },
      );
      expect(result).toMatchObject({ ok: true, attempts: 2 });
    } finally {
      pinned.closeAllConnections();
      await new Promise((resolve) => pinned.close(resolve));
    }
  });
});
