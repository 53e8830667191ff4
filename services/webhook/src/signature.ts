import { createHash } from 'node:crypto';
import { jwtVerify } from 'jose';

/** Why a signed webhook was refused (the `reason` label of webhook_refused_total). */
export type RefusalReason = 'missing' | 'bad_signature' | 'hash_mismatch' | 'stale' | 'future' | 'no_iat';

/** Result of checking a webhook's signature. */
export type SignatureCheck = { ok: true } | { ok: false; reason: RefusalReason; message: string };

export interface SignatureOptions {
  secret: Uint8Array;
  maxAgeSeconds: number;
  /** How far in the future `iat` may be (clock skew between Vonage and us). */
  maxFutureSeconds?: number;
  now: () => number;
}

/** Encode the signature secret once for jose. */
export const signatureKey = (secret: string): Uint8Array => new TextEncoder().encode(secret);

/** Hex SHA-256 of the raw body bytes, as Vonage puts in `payload_hash`. */
export const payloadHash = (raw: Uint8Array | string): string => createHash('sha256').update(raw).digest('hex');

const refuse = (reason: RefusalReason, message: string): SignatureCheck => ({ ok: false, reason, message });

/**
 * Verify a Vonage signed webhook: `Authorization: Bearer <JWT>` HS256 with the signature secret,
 * `payload_hash` equal to the SHA-256 of the raw body, and a fresh `iat`.
 */
export async function verifyWebhookSignature(
  authorization: string | undefined,
  rawBody: Uint8Array,
  options: SignatureOptions,
): Promise<SignatureCheck> {
  const match = /^bearer\s+(\S+)$/i.exec(authorization?.trim() ?? '');
  if (!match?.[1]) return refuse('missing', 'a signed request is required (Authorization: Bearer <JWT>)');
  const nowMs = options.now();
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(match[1], options.secret, { algorithms: ['HS256'], currentDate: new Date(nowMs) }));
  } catch {
    return refuse('bad_signature', 'the webhook signature is not valid');
  }
  if (typeof payload.iat !== 'number') return refuse('no_iat', 'the webhook signature has no iat');
  const ageSeconds = nowMs / 1000 - payload.iat;
  if (ageSeconds > options.maxAgeSeconds) return refuse('stale', 'the webhook signature is too old');
  if (-ageSeconds > (options.maxFutureSeconds ?? 60)) return refuse('future', 'the webhook signature is issued in the future');
  if (typeof payload.payload_hash !== 'string' || payload.payload_hash.toLowerCase() !== payloadHash(rawBody)) {
    return refuse('hash_mismatch', 'the body does not match the signed payload_hash');
  }
  return { ok: true };
}
