import { createHash } from 'node:crypto';
import type { CallEvent } from '@clarion/contracts';
import type { AttemptIds } from './ncco.js';

/** A webhook payload that cannot become a CallEvent (answered with 400). */
export class EventPayloadError extends Error {
  override readonly name = 'EventPayloadError';
  readonly code = 'invalid_event';
}

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : typeof value === 'number' ? String(value) : undefined;

// Vonage sends money, durations and SIP codes as strings ("7", "0.00450000").
const num = (value: unknown): number | undefined => {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
};

function isoTime(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** The status of a payload: its own, else inferred from its shape (error, input, record, transfer). */
function statusOf(payload: Record<string, unknown>): string {
  const status = str(payload.status);
  if (status !== undefined) return status.slice(0, 64);
  if (payload.dtmf !== undefined || payload.speech !== undefined) return 'input';
  if (payload.reason !== undefined) return 'error';
  if (payload.recording_url !== undefined) return 'record';
  if (payload.conversation_uuid_from !== undefined || payload.conversation_uuid_to !== undefined) return 'transfer';
  return 'unknown';
}

/** The digits of an input payload: `dtmf.digits` (null when nothing was pressed). */
export function digitsOf(payload: Record<string, unknown>): string | null {
  const dtmf = payload.dtmf;
  if (dtmf && typeof dtmf === 'object') {
    const digits = (dtmf as { digits?: unknown }).digits;
    return typeof digits === 'string' && digits !== '' ? digits : null;
  }
  return typeof payload.digits === 'string' && payload.digits !== '' ? payload.digits : null;
}

/**
 * Normalise a Voice API webhook payload into a CallEvent: uuid from `uuid` or `call_uuid`, string
 * numbers to numbers, error events (a `reason`, no status) to status `error`, raw payload kept.
 */
export function normaliseCallEvent(payload: Record<string, unknown>, ids: AttemptIds, receivedAt: Date): CallEvent {
  const uuid = str(payload.uuid) ?? str(payload.call_uuid) ?? str(payload.conversation_uuid);
  if (uuid === undefined) throw new EventPayloadError('event has no uuid, call_uuid or conversation_uuid');
  const received = receivedAt.toISOString();
  const event: CallEvent = {
    kind: 'call',
    broadcastId: ids.b,
    contactId: ids.c,
    attempt: ids.a,
    uuid: uuid.slice(0, 100),
    status: statusOf(payload),
    timestamp: isoTime(payload.timestamp) ?? received,
    receivedAt: received,
    raw: payload,
  };
  const conversationUuid = str(payload.conversation_uuid);
  if (conversationUuid !== undefined) event.conversationUuid = conversationUuid;
  const detail = str(payload.detail);
  if (detail !== undefined) event.detail = detail;
  const subState = str(payload.sub_state);
  if (subState !== undefined) event.subState = subState;
  const reason = str(payload.reason);
  if (reason !== undefined) event.reason = reason;
  const digits = digitsOf(payload);
  if (digits !== null) event.digits = digits;
  const duration = num(payload.duration);
  if (duration !== undefined) event.duration = duration;
  const price = num(payload.price);
  if (price !== undefined) event.price = price;
  const rate = num(payload.rate);
  if (rate !== undefined) event.rate = rate;
  const sipCode = num(payload.sip_code);
  if (sipCode !== undefined) event.sipCode = sipCode;
  return event;
}

/**
 * The JetStream msgID of an event: the same provider event always hashes the same, so a redelivery
 * is dropped by the stream. Without a provider timestamp the raw body stands in for it.
 */
export function callEventMsgId(event: CallEvent, rawBody: string): string {
  const when = isoTime(event.raw.timestamp) ?? `body:${rawBody}`;
  const key = [event.broadcastId, event.contactId, event.attempt, event.uuid, event.status, when, event.detail ?? '', event.subState ?? '', event.digits ?? '', event.reason ?? ''].join('\u0000');
  return createHash('sha256').update(key).digest('hex');
}
