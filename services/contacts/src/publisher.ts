import { createInbox, encodeJson, headers, type NatsConnection } from '@clarion/nats';

type Subscription = ReturnType<NatsConnection['subscribe']>;

/** Raised when JetStream refuses a message or stops acknowledging. */
export class PublishError extends Error {
  override readonly name = 'PublishError';
  readonly code = 'publish_failed';
}

/**
 * JetStream publishing with a bounded number of outstanding acks. Messages go out as core publishes
 * with a reply subject under one private inbox, and one subscription collects the acks: far cheaper
 * than a request per message, while memory stays flat and the first refusal is reported, not lost.
 */
export class WindowedPublisher {
  private readonly prefix = createInbox();
  private readonly pending = new Set<number>();
  private sub: Subscription | undefined;
  private seq = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;
  private lastProgress = Date.now();
  private readonly headers = headers();

  constructor(
    private readonly nc: NatsConnection,
    private readonly max = 4096,
    private readonly ackTimeoutMs = 10_000,
  ) {}

  /**
   * Publish now when a slot is free (returns nothing), else once one is (returns a promise resolved
   * when sent, not when acknowledged). The synchronous path matters: the NATS client writes its
   * buffer to the socket in a microtask, so messages published without awaiting in between leave
   * in one write instead of one system call each.
   */
  publish(subject: string, value: unknown, msgID: string): Promise<void> | undefined {
    this.check();
    if (this.pending.size >= this.max) return this.publishWhenFree(subject, value, msgID);
    this.send(subject, value, msgID);
    return undefined;
  }

  private async publishWhenFree(subject: string, value: unknown, msgID: string): Promise<void> {
    while (this.pending.size >= this.max) await this.progress();
    this.send(subject, value, msgID);
  }

  private send(subject: string, value: unknown, msgID: string): void {
    this.sub ??= this.nc.subscribe(`${this.prefix}.*`, { callback: (_error, msg) => this.onAck(msg.subject, msg.data) });
    const seq = ++this.seq;
    // One headers object for every message: the client encodes it into the message during publish().
    this.headers.set('Nats-Msg-Id', msgID);
    this.pending.add(seq);
    this.nc.publish(subject, encodeJson(value), { reply: `${this.prefix}.${seq}`, headers: this.headers });
  }

  /** Wait until every message is acknowledged; throws the first failure. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await this.progress();
    this.check();
  }

  /** Stop listening for acks. */
  close(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private onAck(subject: string, data: Uint8Array): void {
    const seq = Number(subject.slice(this.prefix.length + 1));
    if (!this.pending.delete(seq)) return;
    this.lastProgress = Date.now();
    // nats-server writes a stored message's ack as `{"stream":…`: no need to parse a million of them.
    if (isStoredAck(data)) return this.wakeAll();
    try {
      const ack = JSON.parse(new TextDecoder().decode(data)) as { error?: { description?: string; code?: number } };
      if (ack.error) this.failure ??= new PublishError(`JetStream refused a message: ${ack.error.description ?? ack.error.code}`);
    } catch {
      this.failure ??= new PublishError('JetStream sent an unreadable acknowledgement');
    }
    this.wakeAll();
  }

  private wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolve on the next ack; fail when none came for `ackTimeoutMs`. */
  private async progress(): Promise<void> {
    this.check();
    const idle = Date.now() - this.lastProgress;
    if (idle >= this.ackTimeoutMs) {
      this.failure ??= new PublishError(`JetStream acknowledged nothing for ${this.ackTimeoutMs} ms (${this.pending.size} outstanding)`);
      this.check();
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.ackTimeoutMs - idle);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.check();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }
}

const STORED_ACK = new TextEncoder().encode('{"stream":');

/** Whether an ack is JetStream's plain "stored" reply (an error reply starts `{"error":`). */
function isStoredAck(data: Uint8Array): boolean {
  if (data.length < STORED_ACK.length) return false;
  for (let i = 0; i < STORED_ACK.length; i++) if (data[i] !== STORED_ACK[i]) return false;
  return true;
}
