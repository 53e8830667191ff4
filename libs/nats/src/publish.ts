import type { JetStreamClient, PubAck } from '@nats-io/jetstream';

const encoder = new TextEncoder();

export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

/**
 * Publish a JSON message to JetStream and wait for the server's acknowledgement.
 * `msgID` makes a republished message a no-op inside the stream's duplicate window.
 */
export async function publishJson(
  js: JetStreamClient,
  subject: string,
  value: unknown,
  msgID?: string,
): Promise<PubAck> {
  return js.publish(subject, encodeJson(value), msgID === undefined ? undefined : { msgID });
}
