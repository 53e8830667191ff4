import {
  AckPolicy,
  DeliverPolicy,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  DiscardPolicy,
  type ConsumerConfig,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { BUCKETS, STREAMS } from '@clarion/contracts';

const SECOND_NS = 1_000_000_000;
const DAY_NS = 86_400 * SECOND_NS;

/** Replicas for streams and buckets: 1 on a single server, 3 on a cluster (NATS_REPLICAS). */
export interface TopologyOptions {
  replicas?: number;
  /**
   * Max age of a key in the `call-slots` bucket (ms): a slot whose attempt never ends is gone after
   * this. Default 15 minutes. When given, an existing bucket is changed to it (the dialer passes its
   * CALL_SLOT_TIMEOUT_MS); other services leave the bucket as they find it.
   */
  slotMaxAgeMs?: number;
}

/** Default max age of a call slot, the dialer's default CALL_SLOT_TIMEOUT_MS. */
export const DEFAULT_SLOT_MAX_AGE_MS = 15 * 60_000;

/** Create or update the streams Clarion uses. Idempotent; every service calls it at start. */
export async function ensureStreams(nc: NatsConnection, options: TopologyOptions = {}): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  const num_replicas = options.replicas ?? 1;
  const configs = [
    {
      name: STREAMS.requests.name,
      subjects: [...STREAMS.requests.subjects],
      max_age: 7 * DAY_NS,
      duplicate_window: 120 * SECOND_NS,
    },
    {
      name: STREAMS.dial.name,
      subjects: [...STREAMS.dial.subjects],
      max_age: 14 * DAY_NS,
      // Message ids are <bid>.<cid>.<attempt>: a republished job inside the window is dropped.
      duplicate_window: 600 * SECOND_NS,
    },
    {
      name: STREAMS.events.name,
      subjects: [...STREAMS.events.subjects],
      max_age: 30 * DAY_NS,
      duplicate_window: 600 * SECOND_NS,
    },
  ];
  for (const config of configs) {
    const full = {
      ...config,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      num_replicas,
    };
    try {
      await jsm.streams.info(config.name);
      await jsm.streams.update(config.name, full);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await jsm.streams.add(full);
    }
  }
  return jsm;
}

function isNotFound(error: unknown): boolean {
  const text = String((error as { message?: string })?.message ?? error);
  return /not found/i.test(text);
}

export interface Buckets {
  broadcasts: KV;
  control: KV;
  idempotency: KV;
  ledger: KV;
  pacer: KV;
  slots: KV;
}

/** Open (creating when missing) every KV bucket Clarion uses. */
export async function ensureBuckets(nc: NatsConnection, options: TopologyOptions = {}): Promise<Buckets> {
  const kvm = new Kvm(nc);
  const replicas = options.replicas ?? 1;
  const open = (name: string, history = 1, ttl?: number) => kvm.create(name, { history, replicas, ...(ttl === undefined ? {} : { ttl }) });
  const slotMaxAgeMs = options.slotMaxAgeMs ?? DEFAULT_SLOT_MAX_AGE_MS;
  const [broadcasts, control, idempotency, ledger, pacer, slots] = await Promise.all([
    open(BUCKETS.broadcasts),
    open(BUCKETS.control, 5),
    open(BUCKETS.idempotency),
    open(BUCKETS.ledger),
    open(BUCKETS.pacer),
    // nats-server 2.9 has no per-key TTL: the bucket's max_age is what ends a leaked slot.
    open(BUCKETS.slots, 1, slotMaxAgeMs),
  ]);
  if (options.slotMaxAgeMs !== undefined) await setMaxAge(nc, `KV_${BUCKETS.slots}`, slotMaxAgeMs);
  return { broadcasts, control, idempotency, ledger, pacer, slots };
}

/** Change a stream's max_age when it differs (a bucket created earlier with another value). */
async function setMaxAge(nc: NatsConnection, stream: string, maxAgeMs: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const maxAge = Math.round(maxAgeMs * 1_000_000);
  if (info.config.max_age === maxAge) return;
  // The server refuses a duplicate window longer than the max age (KV writes carry no message ids).
  await jsm.streams.update(stream, { ...info.config, max_age: maxAge, duplicate_window: Math.min(info.config.duplicate_window, maxAge) });
}

/** A durable, explicitly acknowledged pull consumer; created or updated to the given config. */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
): Promise<void> {
  const full: Partial<ConsumerConfig> = {
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 30 * SECOND_NS,
    max_deliver: -1,
    ...config,
  };
  try {
    await jsm.consumers.info(stream, config.durable_name);
    await jsm.consumers.update(stream, config.durable_name, full);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.consumers.add(stream, full);
  }
}

export { SECOND_NS };
export type { KV, JetStreamManager };
