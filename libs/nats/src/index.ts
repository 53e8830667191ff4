export { connectNats, type NatsSettings, type NatsConnection } from './connection.js';
export {
  ensureStreams,
  ensureBuckets,
  ensureConsumer,
  SECOND_NS,
  DEFAULT_SLOT_MAX_AGE_MS,
  type Buckets,
  type KV,
  type JetStreamManager,
  type TopologyOptions,
} from './topology.js';
export { startConsumeLoop, ack, nak, term, type Disposition, type ConsumeLoop, type ConsumeLoopOptions } from './consume.js';
export { startNatsServer, findNatsServer, freePort, NatsServerMissingError, type NatsServerHandle } from './server.js';
export { publishJson, encodeJson } from './publish.js';
export { jetstream, jetstreamManager, DiscardPolicy, type JsMsg, type JetStreamClient } from '@nats-io/jetstream';
/** Message headers and inbox names, for publishers that collect JetStream acks themselves. */
export { headers, createInbox, type MsgHdrs } from '@nats-io/transport-node';
