import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

/** Figures of one target under the offered load (latencies in ms). */
export interface LoadFigures {
  offered: number;
  achievedRps: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Share of the measured time the load generator's thread was busy (near 1: the generator limits). */
  generatorBusy: number;
}

/** Figures of one target driven closed-loop (every socket sends its next request on each reply). */
export interface SaturationFigures {
  rps: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  generatorBusy: number;
}

/** A server to drive: request i asks `127.0.0.1:port` for `paths[i % paths.length]`. */
export interface LoadTarget {
  port: number;
  paths: string[];
}

/**
 * Drive several targets in alternating slices (ABBA order: A B, B A, A B, …) so that load from
 * elsewhere on the machine, which drifts, falls on every target alike; each keeps its connections
 * between slices. `open`: offer `rate` req/s per slice; `closed`: `sockets` requests always in flight.
 */
export type LoadJob = {
  targets: LoadTarget[];
  sockets: number;
  /** Per target, before the first round (not measured). */
  warmupMs: number;
  sliceMs: number;
  rounds: number;
} & ({ mode: 'open'; rate: number } | { mode: 'closed' });

/** Figures per target (in the order given), and each round's throughput per target. */
export interface LoadResult<F> {
  figures: F[];
  /** rounds × targets: requests per second in each slice. */
  roundRps: number[][];
}

type Figures<J extends LoadJob> = J extends { mode: 'open' } ? LoadFigures : SaturationFigures;

const WORKER_TAG = 'clarion-load-generator';

/**
 * Run `job` on a worker thread, so the generator has its own event loop (and core) and does not take
 * the CPU of the servers it measures. Resolves with the figures; rejects if the worker fails.
 */
export function runLoad<J extends LoadJob>(job: J): Promise<LoadResult<Figures<J>>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { tag: WORKER_TAG, job } });
    let settled = false;
    worker.once('message', (result: LoadResult<Figures<J>>) => {
      settled = true;
      resolve(result);
    });
    worker.once('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`load generator exited with code ${code} before reporting`));
    });
  });
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
const round = (n: number) => Math.round(n * 1000) / 1000;

type Pending = { request: Buffer; done: (ok: boolean) => void };

/**
 * A keep-alive HTTP/1.1 client over raw sockets: at most `sockets` connections, one request in flight
 * on each (no pipelining), further requests queued, like `http.Agent({ keepAlive, maxSockets })`. It
 * parses only the status and Content-Length, so the generator costs far less CPU per request than
 * `http.request` and the server, not the generator, is what saturates. A response without a
 * Content-Length (chunked) counts as an error.
 */
function client(port: number, sockets: number) {
  const requests = new Map<string, Buffer>();
  const requestFor = (path: string): Buffer => {
    let bytes = requests.get(path);
    if (!bytes) {
      bytes = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`, 'latin1');
      requests.set(path, bytes);
    }
    return bytes;
  };
  const idle: Connection[] = [];
  const queue: Pending[] = [];
  let open = 0;

  class Connection {
    private readonly socket: Socket;
    private current: Pending | undefined;
    private head: Buffer | undefined;
    private status = 0;
    private remaining = -1;
    private closeAfter = false;

    constructor() {
      open++;
      this.socket = connect({ host: '127.0.0.1', port, noDelay: true });
      this.socket.setTimeout(5000, () => this.socket.destroy(new Error('request timed out')));
      this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
      this.socket.on('error', () => undefined);
      this.socket.on('close', () => {
        open--;
        const index = idle.indexOf(this);
        if (index >= 0) idle.splice(index, 1);
        this.finish(false, true);
        const next = queue.shift();
        if (next) dispatch(next);
      });
    }

    send(pending: Pending) {
      this.current = pending;
      this.head = undefined;
      this.remaining = -1;
      this.socket.write(pending.request);
    }

    destroy() {
      this.socket.destroy();
    }

    private onData(chunk: Buffer) {
      if (!this.current) {
        this.socket.destroy();
        return;
      }
      if (this.remaining < 0) {
        const head = this.head ? Buffer.concat([this.head, chunk]) : chunk;
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          this.head = head;
          return;
        }
        const text = head.toString('latin1', 0, end).toLowerCase();
        this.status = Number(text.slice(9, 12));
        const length = /\r\ncontent-length:\s*(\d+)/.exec(text);
        if (!length?.[1]) {
          this.socket.destroy();
          return;
        }
        this.closeAfter = /\r\nconnection:\s*close/.test(text);
        this.remaining = Number(length[1]) - (head.length - end - 4);
      } else {
        this.remaining -= chunk.length;
      }
      if (this.remaining > 0) return;
      if (this.remaining < 0) {
        // Bytes past the response: nothing was pipelined, so the stream is out of step.
        this.socket.destroy();
        return;
      }
      this.finish(this.status === 200, false);
      if (this.closeAfter) this.socket.end();
      else release(this);
    }

    private finish(ok: boolean, closing: boolean) {
      const current = this.current;
      this.current = undefined;
      if (current) current.done(ok && !closing);
    }
  }

  const release = (connection: Connection) => {
    const next = queue.shift();
    if (next) connection.send(next);
    else idle.push(connection);
  };
  const dispatch = (pending: Pending) => {
    const connection = idle.pop() ?? (open < sockets ? new Connection() : undefined);
    if (connection) connection.send(pending);
    else queue.push(pending);
  };
  const once = (path: string) => new Promise<boolean>((done) => dispatch({ request: requestFor(path), done }));
  return {
    once,
    close: () => {
      for (const connection of idle.splice(0)) connection.destroy();
    },
  };
}

type Client = ReturnType<typeof client>;
type Slice = { latencies: number[]; errors: number; requests: number; elapsed: number };

/** Offer `rate` req/s for `ms` and measure each latency from its scheduled start. */
async function openSlice(http: Client, paths: string[], rate: number, ms: number, first: number): Promise<Slice> {
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  const tasks: Promise<void>[] = [];
  const start = performance.now();
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    while (sent < due) {
      // Latency counts from the scheduled time, so queueing behind slow replies is not hidden.
      const scheduled = start + (sent * 1000) / rate;
      const path = paths[(first + sent++) % paths.length] ?? '/';
      tasks.push(
        http.once(path).then((ok) => {
          if (!ok) errors++;
          latencies.push(performance.now() - scheduled);
        }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(tasks);
  return { latencies, errors, requests: sent, elapsed: performance.now() - start };
}

/** Keep `sockets` requests in flight for `ms`: the server's throughput at saturation. */
async function closedSlice(http: Client, paths: string[], sockets: number, ms: number, first: number): Promise<Slice> {
  const latencies: number[] = [];
  let errors = 0;
  let i = first;
  const start = performance.now();
  const loop = async () => {
    while (performance.now() - start < ms) {
      const t = performance.now();
      if (!(await http.once(paths[i++ % paths.length] ?? '/'))) errors++;
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: sockets }, loop));
  return { latencies, errors, requests: latencies.length, elapsed: performance.now() - start };
}

async function drive(job: LoadJob): Promise<LoadResult<LoadFigures | SaturationFigures>> {
  const slice = (http: Client, paths: string[], ms: number, first: number) =>
    job.mode === 'open' ? openSlice(http, paths, job.rate, ms, first) : closedSlice(http, paths, job.sockets, ms, first);
  const targets = job.targets.map((target) => ({
    ...target,
    http: client(target.port, job.sockets),
    sent: 0,
    totals: { latencies: [] as number[], errors: 0, requests: 0, elapsed: 0, busy: 0 },
  }));
  for (const target of targets) target.sent += (await slice(target.http, target.paths, job.warmupMs, 0)).requests;
  const roundRps: number[][] = [];
  for (let r = 0; r < job.rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    const rps = new Map<(typeof targets)[number], number>();
    for (const target of order) {
      const elu = performance.eventLoopUtilization();
      const figures = await slice(target.http, target.paths, job.sliceMs, target.sent);
      const busy = performance.eventLoopUtilization(elu);
      target.sent += figures.requests;
      const totals = target.totals;
      for (const latency of figures.latencies) totals.latencies.push(latency);
      totals.errors += figures.errors;
      totals.requests += figures.requests;
      totals.elapsed += figures.elapsed;
      totals.busy += busy.active;
      rps.set(target, Math.round((figures.requests / figures.elapsed) * 1000));
    }
    roundRps.push(targets.map((target) => rps.get(target) ?? 0));
  }
  for (const target of targets) target.http.close();
  const figures = targets.map(({ totals }) => {
    const sorted = totals.latencies.sort((a, b) => a - b);
    const common = {
      requests: totals.requests,
      errors: totals.errors,
      p50Ms: round(quantile(sorted, 0.5)),
      p99Ms: round(quantile(sorted, 0.99)),
    };
    const rps = Math.round((totals.requests / totals.elapsed) * 1000);
    const generatorBusy = round(totals.busy / totals.elapsed);
    return job.mode === 'open'
      ? { offered: job.rate, achievedRps: rps, ...common, maxMs: round(sorted[sorted.length - 1] ?? 0), generatorBusy }
      : { rps, ...common, generatorBusy };
  });
  return { figures, roundRps };
}

// Worker side: run the job handed over by runLoad and post the figures back.
if (!isMainThread && (workerData as { tag?: unknown } | null)?.tag === WORKER_TAG) {
  const { job } = workerData as { job: LoadJob };
  parentPort?.postMessage(await drive(job));
}
