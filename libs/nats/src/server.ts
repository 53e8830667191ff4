import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Thrown when no `nats-server` binary can be found. */
export class NatsServerMissingError extends Error {
  override readonly name = 'NatsServerMissingError';
  readonly code = 'nats_server_missing';
}

/** Find `nats-server` on PATH (or /usr/sbin, where Debian puts it). */
export function findNatsServer(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new NatsServerMissingError(
    'nats-server was not found on PATH. Install it (Debian/Ubuntu: `apt-get install -y nats-server`, ' +
      'macOS: `brew install nats-server`) or set NATS_URL to a running server with JetStream enabled.',
  );
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nats-server did not listen on port ${port} within ${deadlineMs} ms`);
}

export interface NatsServerHandle {
  url: string;
  port: number;
  dataDir: string;
  /** Stop the server (SIGTERM), keeping its data folder. */
  stop(): Promise<void>;
  /** Start it again on the same port and data folder (a NATS restart). */
  restart(): Promise<void>;
  /** Stop it and delete its data folder. */
  dispose(): Promise<void>;
}

/** Start a private JetStream-enabled nats-server on a free loopback port with its own data folder. */
export async function startNatsServer(options: { port?: number; dataDir?: string } = {}): Promise<NatsServerHandle> {
  const binary = findNatsServer();
  const port = options.port ?? (await freePort());
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'clarion-nats-'));
  let child: ChildProcess | undefined;

  const launch = async () => {
    child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dataDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const exited = new Promise<never>((_, reject) =>
      child?.once('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${stderr}`))),
    );
    await Promise.race([waitForPort(port, 10_000), exited]);
  };
  const halt = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGTERM');
      setTimeout(() => running.kill('SIGKILL'), 5000).unref();
    });
  };

  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dataDir,
    stop: halt,
    restart: async () => {
      await halt();
      await launch();
    },
    dispose: async () => {
      await halt();
      if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
