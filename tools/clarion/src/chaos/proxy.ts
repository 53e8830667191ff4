import { connect, createServer, type Socket } from 'node:net';

/** A round-robin TCP proxy on loopback: one base URL in front of several replicas of an HTTP service. */
export interface RoundRobinProxy {
  readonly port: number;
  readonly url: string;
  /** Connections handed to each upstream port so far. */
  readonly handed: Map<number, number>;
  close(): Promise<void>;
}

/**
 * Each new connection goes to the next upstream; an upstream that refuses the connection (a killed
 * replica) is skipped, so callers only notice the requests that were in flight on it.
 */
export async function startRoundRobinProxy(upstreams: () => number[]): Promise<RoundRobinProxy> {
  let next = 0;
  const handed = new Map<number, number>();
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.pause();
    const ports = upstreams();
    const attempt = (tries: number) => {
      if (tries >= ports.length) {
        client.destroy();
        return;
      }
      const port = ports[(next += 1) % ports.length]!;
      const upstream = connect(port, '127.0.0.1');
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        handed.set(port, (handed.get(port) ?? 0) + 1);
        open.add(upstream);
        upstream.once('close', () => open.delete(upstream));
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.once('error', () => {
        if (!connected) attempt(tries + 1);
      });
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    handed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
