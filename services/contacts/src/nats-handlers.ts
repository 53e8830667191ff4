import {
  BROADCAST_CONTROL,
  BROADCAST_REQUEST,
  CONSUMERS,
  KeypressEvent,
  STREAMS,
  decodeJson,
  parseWith,
  ValidationError,
} from '@clarion/contracts';
import type { Logger } from '@clarion/logging';
import {
  ack,
  encodeJson,
  ensureConsumer,
  SECOND_NS,
  startConsumeLoop,
  term,
  type ConsumeLoop,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
} from '@clarion/nats';
import { normaliseNumber } from '@clarion/phone';
import { controlBroadcast, createBroadcast, errorBody, isRequestError, parseRequest, type BroadcastDeps } from './broadcast.js';
import type { ContactsMetrics } from './metrics.js';
import type { Repos } from './repo.js';
import { suppress } from './suppressions.js';

type Subscription = ReturnType<NatsConnection['subscribe']>;

/** Create the durable consumers this service reads (idempotent; called at start). */
export async function ensureContactsConsumers(jsm: JetStreamManager): Promise<void> {
  // Enqueueing a large audience takes a while: a long ack wait avoids a needless redelivery.
  await ensureConsumer(jsm, STREAMS.requests.name, { durable_name: CONSUMERS.contactsSubmit, ack_wait: 300 * SECOND_NS });
  await ensureConsumer(jsm, STREAMS.events.name, { durable_name: CONSUMERS.contactsKeypress, filter_subject: 'evt.keypress.>' });
}

export interface NatsHandlerDeps extends BroadcastDeps {
  nc: NatsConnection;
  repos: Repos;
  logger: Logger;
  metrics?: ContactsMetrics;
}

/** Running NATS handlers; `stop` stops taking work and waits for what is in flight. */
export interface NatsHandlers {
  stop(): Promise<void>;
}

/** Queue group shared by every contacts replica for request/reply subjects. */
export const QUEUE = 'contacts';

/**
 * Serve `broadcast.request` and `broadcast.control` (core request/reply, queue group `contacts`),
 * consume `broadcast.submit` and opt-out keypresses. Consumers must exist (see ensureContactsConsumers).
 */
export function startNatsHandlers(deps: NatsHandlerDeps): NatsHandlers {
  const { nc, logger } = deps;
  const inFlight = new Set<Promise<void>>();
  const count = (reply: { created: boolean; counts: Record<string, number> } | 'rejected' | 'failed') => {
    if (!deps.metrics) return;
    if (typeof reply === 'string') return deps.metrics.broadcasts.inc({ result: reply });
    deps.metrics.broadcasts.inc({ result: reply.created ? 'created' : 'existing' });
    if (reply.created) for (const [state, n] of Object.entries(reply.counts)) deps.metrics.contacts.inc({ state }, n);
  };
  const track = (work: Promise<void>) => {
    const task = work.finally(() => inFlight.delete(task));
    inFlight.add(task);
  };

  const onRequest = async (data: Uint8Array, respond: (reply: unknown) => void) => {
    try {
      const request = parseRequest(data);
      const reply = await createBroadcast(request, deps);
      logger.info({ broadcastId: reply.broadcastId, created: reply.created, counts: reply.counts }, 'broadcast enqueued');
      count(reply);
      respond(reply);
    } catch (error) {
      count(isRequestError(error) ? 'rejected' : 'failed');
      if (isRequestError(error)) logger.warn({ err: (error as Error).message }, 'broadcast request rejected');
      else logger.error({ err: error }, 'broadcast request failed');
      respond({ ok: false, error: errorBody(error) });
    }
  };

  const onControl = async (data: Uint8Array, respond: (reply: unknown) => void) => {
    try {
      const state = await controlBroadcast(data, deps);
      logger.info({ broadcastId: state.broadcastId, status: state.status }, 'broadcast control');
      respond({ ok: true, state });
    } catch (error) {
      if (!isRequestError(error)) logger.error({ err: error }, 'broadcast control failed');
      respond({ ok: false, error: errorBody(error) });
    }
  };

  const subscriptions: Subscription[] = [
    nc.subscribe(BROADCAST_REQUEST, {
      queue: QUEUE,
      callback: (error, msg) => {
        if (error) return logger.error({ err: error }, 'broadcast.request subscription failed');
        track(onRequest(msg.data, (reply) => msg.respond(encodeJson(reply))));
      },
    }),
    nc.subscribe(BROADCAST_CONTROL, {
      queue: QUEUE,
      callback: (error, msg) => {
        if (error) return logger.error({ err: error }, 'broadcast.control subscription failed');
        track(onControl(msg.data, (reply) => msg.respond(encodeJson(reply))));
      },
    }),
  ];

  const submit = startConsumeLoop({
    nc,
    stream: STREAMS.requests.name,
    consumer: CONSUMERS.contactsSubmit,
    concurrency: 4,
    handler: async (msg: JsMsg) => {
      try {
        const request = parseRequest(msg.data);
        // A submitted request without its own key is keyed by its stream position: redelivery is harmless.
        const reply = await createBroadcast(request, deps, { idempotencyKey: `submit-seq-${msg.seq}` });
        logger.info({ broadcastId: reply.broadcastId, created: reply.created, counts: reply.counts }, 'submitted broadcast enqueued');
        count(reply);
        return ack;
      } catch (error) {
        count(isRequestError(error) ? 'rejected' : 'failed');
        if (isRequestError(error)) {
          logger.warn({ seq: msg.seq, err: (error as Error).message }, 'submitted broadcast rejected');
          return term((error as Error).message.slice(0, 200));
        }
        throw error;
      }
    },
    onError: (error) => logger.error({ err: error }, 'broadcast.submit handling failed; will retry'),
  });

  const keypress = startConsumeLoop({
    nc,
    stream: STREAMS.events.name,
    consumer: CONSUMERS.contactsKeypress,
    concurrency: 16,
    handler: async (msg: JsMsg) => {
      let event: KeypressEvent;
      try {
        event = parseWith(KeypressEvent, decodeJson(msg.data, 'keypress event'), 'keypress event');
      } catch (error) {
        const reason = error instanceof ValidationError ? error.message : 'invalid keypress event';
        logger.warn({ seq: msg.seq, reason }, 'keypress event rejected');
        return term(reason.slice(0, 200));
      }
      if (event.meaning !== 'opt_out') return ack;
      if (event.number === undefined) {
        logger.warn({ broadcastId: event.broadcastId, contactId: event.contactId }, 'opt-out without a number; nothing to suppress');
        return ack;
      }
      const normalised = normaliseNumber(event.number.startsWith('+') ? event.number : `+${event.number}`);
      if (!normalised.ok) {
        logger.warn({ broadcastId: event.broadcastId, contactId: event.contactId, reason: normalised.reason }, 'opt-out number unusable');
        return ack;
      }
      const added = await suppress(
        deps.repos,
        { number: normalised.e164, source: 'keypress', reason: 'opted out by keypress', broadcastId: event.broadcastId },
        deps.now,
      );
      if (added) logger.info({ broadcastId: event.broadcastId, contactId: event.contactId, number: event.number }, 'number opted out');
      return ack;
    },
    onError: (error) => logger.error({ err: error }, 'keypress handling failed; will retry'),
    retryDelayMs: 2000,
  });
  const loops: ConsumeLoop[] = [submit, keypress];

  return {
    async stop() {
      await Promise.all(subscriptions.map((s) => s.drain().catch(() => undefined)));
      await Promise.all(loops.map((l) => l.stop()));
      await Promise.allSettled([...inFlight]);
    },
  };
}
