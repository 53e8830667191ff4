import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** A load balancer on loopback: one base URL in front of several replicas of an HTTP service. */
export interface RoundRobinProxy {
  readonly port: number;
  readonly url: string;
  /** Requests answered by each upstream port so far. */
  readonly handed: Map<number, number>;
  /** Requests sent again to another replica because one failed before answering. */
  readonly retried: number;
  close(): Promise<void>;
}

/** Headers that belong to one hop, not to the request. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

/**
 * Round robin per request, as an HTTP load balancer configured for Clarion's webhooks: a request whose
 * replica refuses the connection, or dies before answering, is sent to the next replica (nginx:
 * `proxy_next_upstream error timeout non_idempotent`). That is safe because every webhook is
 * idempotent (events carry an id, answers are pure, keypresses are deduplicated); docs/operations.md
 * asks the same of a production load balancer. Requests are buffered whole (webhooks are small).
 */
export async function startRoundRobinProxy(upstreams: () => number[]): Promise<RoundRobinProxy> {
  let next = 0;
  let retried = 0;
  const handed = new Map<number, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const ports = upstreams();
      // This request's turn in the rotation; a retry takes the next replica after the one that failed.
      const first = (next += 1);
      const send = (tries: number) => {
        if (tries >= Math.max(1, ports.length)) {
          res.destroy(); // every replica failed: the caller sees a reset, as from a real balancer
          return;
        }
        const port = ports[(first + tries) % ports.length]!;
        const upstream = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: forwardable(req.headers), agent: false }, (answer) => {
          handed.set(port, (handed.get(port) ?? 0) + 1);
          res.writeHead(answer.statusCode ?? 502, forwardable(answer.headers));
          answer.pipe(res);
          answer.on('error', () => res.destroy());
        });
        upstream.on('error', () => {
          if (res.headersSent) return void res.destroy();
          if (tries + 1 < ports.length) retried += 1;
          send(tries + 1);
        });
        upstream.end(body);
      };
      send(0);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    handed,
    get retried() {
      return retried;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
