import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface ServiceProcessOptions {
  name: string;
  /** Node script to run (a service's dist/main.js). */
  script: string;
  env: Record<string, string>;
  /** HTTP port whose /readyz tells when the service is ready. */
  port: number;
  cwd?: string;
  /** Append the service's output to this file. */
  logFile?: string;
  /** Called with each output line (JSON log lines from pino). */
  onLine?: (line: string) => void;
  readyTimeoutMs?: number;
}

export interface ServiceProcess {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  pid(): number | undefined;
  /** The last output lines, for failure messages. */
  tail(lines?: number): string;
  /** Send a signal and wait for the exit (SIGKILL for crash tests). */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
  /** Start again with the same options and wait until ready. */
  restart(): Promise<void>;
  /** True while the process runs. */
  running(): boolean;
}

async function isReady(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** Start a service as its own process and wait until its /readyz answers 200. */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const url = `http://127.0.0.1:${options.port}`;
  const buffer: string[] = [];
  let child: ChildProcess | undefined;
  let log: WriteStream | undefined = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;

  const record = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line === '') continue;
      buffer.push(line);
      if (buffer.length > 200) buffer.shift();
      options.onLine?.(line);
    }
    log?.write(chunk);
  };

  const launch = async () => {
    // CLARION_CPU_PROF_DIR: write a V8 CPU profile of every service process there (for benchmarks).
    const profile = process.env.CLARION_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CLARION_CPU_PROF_DIR}`] : [];
    child = spawn(process.execPath, [...profile, options.script], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env, PORT: String(options.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', record);
    child.stderr?.on('data', record);
    const current = child;
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
    while (Date.now() < deadline) {
      if (current.exitCode !== null || current.signalCode !== null) {
        throw new Error(`${options.name} exited during start (${current.exitCode ?? current.signalCode}):\n${tail(30)}`);
      }
      if (await isReady(url)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    current.kill('SIGKILL');
    throw new Error(`${options.name} was not ready at ${url}/readyz within the deadline:\n${tail(30)}`);
  };

  const tail = (lines = 40) => buffer.slice(-lines).join('\n');

  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return current?.exitCode ?? null;
    return new Promise<number | null>((resolve) => {
      current.once('exit', (code) => resolve(code));
      current.kill(signal);
    });
  };

  await launch();
  return {
    name: options.name,
    url,
    port: options.port,
    pid: () => child?.pid,
    tail,
    kill,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    stop: async (graceMs = 10_000) => {
      const current = child;
      if (!current || current.exitCode !== null || current.signalCode !== null) return current?.exitCode ?? null;
      const timer = setTimeout(() => current.kill('SIGKILL'), graceMs);
      const code = await kill('SIGTERM');
      clearTimeout(timer);
      log?.end();
      log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
      return code;
    },
    restart: launch,
  };
}
