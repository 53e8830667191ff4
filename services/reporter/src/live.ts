import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { BroadcastSummary } from './records.js';

/** Minimum time between two pushed summaries of one stream (at most ~4 per second). */
const MIN_INTERVAL_MS = 250;
/** Summaries are also re-read on this period, so changes applied by other replicas show up too. */
const POLL_MS = 1000;
const HEARTBEAT_MS = 15_000;

/**
 * Server-Sent Events of broadcast summaries: pushed when this replica applied a change (or on a
 * slow poll), coalesced, ending with event `final` once every contact is final.
 */
export class LiveUpdates {
  private readonly changes = new EventEmitter();
  private readonly streams = new Set<PassThrough>();

  constructor(private readonly load: (broadcastId: string) => Promise<BroadcastSummary | null>) {
    this.changes.setMaxListeners(0);
  }

  /** Tell open streams that a broadcast changed. */
  notify(broadcastId: string): void {
    this.changes.emit(broadcastId);
  }

  /** Open a stream for one broadcast; the caller sends it as the response body. */
  open(broadcastId: string): PassThrough {
    const out = new PassThrough();
    this.streams.add(out);
    let closed = false;
    let wake: (() => void) | undefined;
    let dirty = false;
    const onChange = () => {
      dirty = true;
      wake?.();
    };
    this.changes.on(broadcastId, onChange);
    const close = () => {
      if (closed) return;
      closed = true;
      this.changes.off(broadcastId, onChange);
      this.streams.delete(out);
      wake?.();
      if (!out.writableEnded) out.end();
    };
    out.on('close', close);
    out.on('error', close);

    const send = (event: string, data: unknown) => {
      if (!closed) out.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const run = async () => {
      out.write(`retry: 2000\n\n`);
      let last = '';
      let lastBeat = Date.now();
      while (!closed) {
        const startedAt = Date.now();
        dirty = false;
        const summary = await this.load(broadcastId).catch(() => undefined);
        if (closed) break;
        if (summary === null) {
          send('error', { code: 'not_found', message: `broadcast ${broadcastId} not found` });
          break;
        }
        if (summary) {
          const { attempts: _attempts, rates: _rates, eta: _eta, etaSeconds: _etaSeconds, ...stable } = summary;
          const key = JSON.stringify(stable);
          if (summary.done) {
            send('final', summary);
            break;
          }
          if (key !== last) {
            send('summary', summary);
            last = key;
            lastBeat = Date.now();
          }
        }
        if (Date.now() - lastBeat > HEARTBEAT_MS) {
          out.write(`: keep-alive\n\n`);
          lastBeat = Date.now();
        }
        // Coalesce: never faster than MIN_INTERVAL_MS, wake early on a change notification.
        const wait = Math.max(0, MIN_INTERVAL_MS - (Date.now() - startedAt));
        await new Promise<void>((resolve) => setTimeout(resolve, wait));
        if (closed) break;
        if (dirty) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, POLL_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      close();
    };
    void run();
    return out;
  }

  /** End every open stream (shutdown). */
  closeAll(): void {
    for (const stream of [...this.streams]) stream.end();
  }
}
