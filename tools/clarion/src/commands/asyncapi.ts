import { stringify } from 'yaml';
import {
  AttemptEvent,
  BroadcastControlRequest,
  BroadcastControlState,
  BroadcastEvent,
  BroadcastReply,
  BroadcastRequest,
  CallEvent,
  ContactFinal,
  DialJob,
  KeypressEvent,
  STREAMS,
} from '@clarion/contracts';
import type { ExitCode, Io } from './context.js';

/** The zod schemas' own JSON Schema export (zod is the contracts' dependency, not ours). */
interface JsonSchemaSource {
  toJSONSchema(options: { io: 'input' | 'output'; unrepresentable: 'any' }): object;
}

const schema = (type: JsonSchemaSource, io: 'input' | 'output' = 'output') => {
  const { $schema: _ignored, ...rest } = type.toJSONSchema({ io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const bid = { broadcastId: { description: 'The broadcast id (b-…)', schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } } };

/** The AsyncAPI 3.0 document of every NATS subject, with payloads generated from the contracts' zod schemas. */
export function asyncApiDocument(): Record<string, unknown> {
  const channel = (address: string, message: string, description: string, params = false) => ({
    address,
    description,
    ...(params ? { parameters: bid } : {}),
    messages: { [message]: { $ref: `#/components/messages/${message}` } },
  });
  const op = (action: 'send' | 'receive', ch: string, summary: string, reply?: { channel: string }) => ({
    action,
    channel: { $ref: `#/channels/${ch}` },
    summary,
    ...(reply ? { reply: { channel: { $ref: `#/channels/${reply.channel}` } } } : {}),
  });
  const message = (name: string, type: JsonSchemaSource | Record<string, unknown>, summary: string, io: 'input' | 'output' = 'output') => ({
    name,
    title: name,
    summary,
    contentType: 'application/json',
    payload: 'toJSONSchema' in type && typeof type.toJSONSchema === 'function' ? schema(type as JsonSchemaSource, io) : type,
  });
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Clarion messaging',
      version: '0.1.0',
      description:
        'Every NATS subject Clarion uses (ARCHITECTURE.md "Messages"). Payloads are generated from libs/contracts ' +
        '(`npx clarion asyncapi > docs/asyncapi.yaml`); a test keeps this file in step. Streams: ' +
        Object.values(STREAMS)
          .map((s) => `${s.name} (${s.subjects.join(', ')})`)
          .join('; ') +
        '. JetStream message ids (Nats-Msg-Id) deduplicate republishes within the stream duplicate window.',
    },
    defaultContentType: 'application/json',
    servers: { local: { host: '127.0.0.1:4222', protocol: 'nats', description: 'nats-server with JetStream (npm start picks a free port; see .clarion/runtime.json)' } },
    channels: {
      broadcastRequest: channel('broadcast.request', 'BroadcastRequest', 'Core request/reply: create a broadcast (contacts, queue group `contacts`).'),
      broadcastReply: { address: null, description: 'The reply inbox of broadcast.request.', messages: { BroadcastReply: { $ref: '#/components/messages/BroadcastReply' } } },
      broadcastSubmit: channel('broadcast.submit', 'BroadcastRequest', 'JetStream (BROADCAST_REQUESTS): the same request for clients that cannot wait; durable `contacts-submit`.'),
      broadcastControl: channel('broadcast.control', 'BroadcastControlRequest', 'Core request/reply: pause, resume or cancel; reply `{ok, state}` or `{ok:false, error}`.'),
      broadcastControlReply: { address: null, description: 'The reply inbox of broadcast.control.', messages: { BroadcastControlReply: { $ref: '#/components/messages/BroadcastControlReply' } } },
      dialJob: channel('dial.job.{broadcastId}', 'DialJob', 'DIAL stream: attempt 1 of each contact, msg id `<bid>.<cid>.1`; durable `dialer-jobs-<bid>` and `reporter-dial`.', true),
      dialRetry: channel('dial.retry.{broadcastId}', 'DialJob', 'DIAL stream: attempts ≥ 2 with `notBefore`, msg id `<bid>.<cid>.<n>`; durable `dialer-retries-<bid>`.', true),
      broadcastEvent: channel('evt.broadcast.{broadcastId}', 'BroadcastEvent', 'EVENTS stream: broadcast lifecycle.', true),
      attemptEvent: channel('evt.attempt.{broadcastId}', 'AttemptEvent', 'EVENTS stream: what the dialer did with each attempt.', true),
      callEvent: channel('evt.call.{broadcastId}', 'CallEvent', 'EVENTS stream: Voice API webhook events, msg id from uuid+status+timestamp; durable `dialer-call-events`.', true),
      keypressEvent: channel('evt.keypress.{broadcastId}', 'KeypressEvent', 'EVENTS stream: keys pressed (acknowledge, opt-out, repeat); durable `contacts-keypress`.', true),
      contactFinal: channel('evt.contact.{broadcastId}', 'ContactFinal', 'EVENTS stream: the one final state of each contact, msg id `final.<bid>.<cid>`.', true),
    },
    operations: {
      requestBroadcast: op('send', 'broadcastRequest', 'Any client asks contacts to create a broadcast.', { channel: 'broadcastReply' }),
      submitBroadcast: op('send', 'broadcastSubmit', 'Any client submits a broadcast without waiting.'),
      controlBroadcast: op('send', 'broadcastControl', 'Any client or the reporter dashboard pauses, resumes or cancels.', { channel: 'broadcastControlReply' }),
      publishDialJob: op('send', 'dialJob', 'contacts enqueues the audience.'),
      consumeDialJob: op('receive', 'dialJob', 'dialer places the calls; reporter counts the audience.'),
      publishDialRetry: op('send', 'dialRetry', 'dialer schedules a retry.'),
      consumeDialRetry: op('receive', 'dialRetry', 'dialer places retries when due.'),
      publishBroadcastEvent: op('send', 'broadcastEvent', 'contacts and dialer publish lifecycle changes.'),
      publishAttemptEvent: op('send', 'attemptEvent', 'dialer publishes each attempt phase.'),
      publishCallEvent: op('send', 'callEvent', 'webhook publishes every Voice API event before answering 2xx.'),
      consumeCallEvent: op('receive', 'callEvent', 'dialer classifies attempts; reporter aggregates.'),
      publishKeypress: op('send', 'keypressEvent', 'webhook publishes DTMF input.'),
      consumeKeypress: op('receive', 'keypressEvent', 'contacts records opt-outs as suppressions; reporter aggregates.'),
      publishContactFinal: op('send', 'contactFinal', 'dialer (outcomes, cancelled, expired) and contacts (suppressed, duplicate).'),
      consumeEvents: op('receive', 'contactFinal', 'reporter aggregates every evt.> subject (durable `reporter-events`).'),
    },
    components: {
      messages: {
        BroadcastRequest: message('BroadcastRequest', BroadcastRequest, 'What an operator asks for (defaults filled by contacts).', 'input'),
        BroadcastReply: message('BroadcastReply', BroadcastReply, 'The broadcast id and audience counts, or the error naming each bad field.'),
        BroadcastControlRequest: message('BroadcastControlRequest', BroadcastControlRequest, 'pause | resume | cancel.'),
        BroadcastControlReply: message(
          'BroadcastControlReply',
          {
            oneOf: [
              { type: 'object', required: ['ok', 'state'], properties: { ok: { const: true }, state: schema(BroadcastControlState) } },
              {
                type: 'object',
                required: ['ok', 'error'],
                properties: { ok: { const: false }, error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
              },
            ],
          },
          'The new control state, or why not.',
        ),
        DialJob: message('DialJob', DialJob, 'One call to place.'),
        BroadcastEvent: message('BroadcastEvent', BroadcastEvent, 'A broadcast lifecycle change.'),
        AttemptEvent: message('AttemptEvent', AttemptEvent, 'placed | refused | ambiguous | outcome of one attempt.'),
        CallEvent: message('CallEvent', CallEvent, 'A normalised Voice API event.'),
        KeypressEvent: message('KeypressEvent', KeypressEvent, 'A key pressed during a call.'),
        ContactFinal: message('ContactFinal', ContactFinal, "A contact's single final state."),
      },
    },
  };
}

/** `clarion asyncapi`: print the document as YAML (redirect into docs/asyncapi.yaml). */
export async function asyncApiCommand(_args: string[], io: Io): Promise<ExitCode> {
  io.out.write(renderAsyncApi());
  return 0;
}

/** The YAML text of docs/asyncapi.yaml. */
export function renderAsyncApi(): string {
  return `# Generated by \`npx clarion asyncapi > docs/asyncapi.yaml\` from libs/contracts. Do not edit by hand.\n${stringify(asyncApiDocument(), { lineWidth: 0 })}`;
}
