import { jetstream, type JsMsg, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

/** What a handler decides for one message. */
export type Disposition =
  | { kind: 'ack' }
  | { kind: 'nak'; delayMs: number }
  | { kind: 'term'; reason: string };

export const ack: Disposition = { kind: 'ack' };
export const nak = (delayMs: number): Disposition => ({ kind: 'nak', delayMs });
export const term = (reason: string): Disposition => ({ kind: 'term', reason });

export interface ConsumeLoopOptions {
  nc: NatsConnection;
  stream: string;
  consumer: string;
  /** Messages processed at once (also the pull batch size). */
  concurrency: number;
  handler: (msg: JsMsg) => Promise<Disposition>;
  /** Called when a handler throws; the message is nak'd with `retryDelayMs`. */
  onError?: (error: unknown, msg?: JsMsg) => void;
  /** Called when a message is terminated, after its reason was recorded by the handler. */
  onTerm?: (reason: string, msg: JsMsg) => void;
  retryDelayMs?: number;
}

export interface ConsumeLoop {
  /** Stop pulling, let in-flight handlers finish, then resolve. */
  stop(): Promise<void>;
  /** Resolves when the loop ends for any reason. */
  done: Promise<void>;
}

/**
 * The nats.js consumer idiom: `for await` over `consume()`, bounded concurrency, ack only after the
 * handler's side effect is durable, `nak(delay)` for transient failure, `term()` for poison.
 * Re-attaches after the consumer or the server goes away, until stopped.
 */
export function startConsumeLoop(options: ConsumeLoopOptions): ConsumeLoop {
  const js = jetstream(options.nc);
  const retryDelayMs = options.retryDelayMs ?? 1000;
  let stopped = false;
  let current: ConsumerMessages | undefined;
  const inFlight = new Set<Promise<void>>();

  const settle = async (msg: JsMsg): Promise<void> => {
    let disposition: Disposition;
    try {
      disposition = await options.handler(msg);
    } catch (error) {
      options.onError?.(error, msg);
      disposition = nak(retryDelayMs);
    }
    if (disposition.kind === 'ack') {
      await msg.ackAck().catch(() => msg.ack());
    } else if (disposition.kind === 'nak') {
      msg.nak(disposition.delayMs);
    } else {
      options.onTerm?.(disposition.reason, msg);
      // nats-server 2.9 ignores "+TERM <reason>": the reason is recorded by onTerm, the term is sent bare.
      msg.term();
    }
  };

  const run = async (): Promise<void> => {
    while (!stopped) {
      try {
        const consumer = await js.consumers.get(options.stream, options.consumer);
        current = await consumer.consume({ max_messages: Math.max(1, options.concurrency) });
        for await (const msg of current) {
          while (inFlight.size >= options.concurrency) await Promise.race(inFlight);
          const task: Promise<void> = settle(msg).finally(() => inFlight.delete(task));
          inFlight.add(task);
          if (stopped) break;
        }
      } catch (error) {
        if (stopped) break;
        options.onError?.(error);
      }
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await Promise.allSettled([...inFlight]);
    // nak/term are fire-and-forget: make sure the server has them before we report stopped.
    await options.nc.flush().catch(() => undefined);
  };

  const done = run();
  return {
    done,
    async stop() {
      stopped = true;
      await current?.close().catch(() => undefined);
      await done;
    },
  };
}
