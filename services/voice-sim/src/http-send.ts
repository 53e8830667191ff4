import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** The part of `fetch` the webhook sender uses; `globalThis.fetch` fits it too (tests inject it). */
export type HttpSend = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body?: string;
    signal?: AbortSignal;
    /** Open a new connection instead of reusing a pooled one (a retry after a connection failure). */
    fresh?: boolean;
  },
) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

const agents = {
  http: new HttpAgent({ keepAlive: true, maxSockets: 256 }),
  https: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
};

/**
 * Webhooks over node:http with keep-alive agents. The simulator sends several webhooks per call;
 * with `fetch` (undici) each one cost several times the CPU, and a load run found the simulator
 * itself saturated before the system under test.
 */
export const httpSend: HttpSend = (url, init) =>
  new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const send = secure ? httpsRequest : httpRequest;
    const headers: Record<string, string | number> = { ...init.headers };
    if (init.body !== undefined) headers['content-length'] = Buffer.byteLength(init.body);
    // `agent: false`: a one-off connection, so a retry cannot land on another pooled socket to the same dead peer.
    const agent = init.fresh ? false : secure ? agents.https : agents.http;
    const req = send(target, { method: init.method, headers, agent }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', fail);
      res.on('end', () => {
        init.signal?.removeEventListener('abort', onAbort);
        const status = res.statusCode ?? 0;
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ ok: status >= 200 && status < 300, status, text: async () => body });
      });
    });
    function fail(error: Error): void {
      init.signal?.removeEventListener('abort', onAbort);
      reject(error);
    }
    function onAbort(): void {
      req.destroy(init.signal?.reason instanceof Error ? init.signal.reason : new Error('aborted'));
    }
    if (init.signal?.aborted) return onAbort();
    init.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', fail);
    req.end(init.body);
  });
