import { createHash, randomUUID } from 'node:crypto';
import { importSPKI, jwtVerify, SignJWT, type CryptoKey, type KeyObject } from 'jose';

/** A request token that voice-sim refused; `detail` says why. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly code = 'unauthorized';
  constructor(readonly detail: string, options?: { cause?: unknown }) {
    super(detail, options);
  }
}

const SKEW_SECONDS = 30;
const MAX_LIFETIME_SECONDS = 24 * 3600;

/** Checks `Authorization: Bearer <RS256 JWT>` the way Vonage does for an application. */
export class RequestVerifier {
  private key: Promise<CryptoKey | KeyObject>;
  constructor(publicKeyPem: string, private readonly applicationId: string) {
    this.key = importSPKI(publicKeyPem, 'RS256');
    this.key.catch(() => undefined);
  }

  /** Resolves with the claims, or throws AuthError. Tokens may be reused until they expire. */
  async verify(header: string | undefined, nowMs: number): Promise<Record<string, unknown>> {
    if (!header || !/^bearer\s+/i.test(header)) throw new AuthError('Missing Authorization: Bearer token');
    const token = header.replace(/^bearer\s+/i, '').trim();
    let key: CryptoKey | KeyObject;
    try {
      key = await this.key;
    } catch (cause) {
      throw new AuthError('The application public key is unusable', { cause });
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key, { algorithms: ['RS256'], clockTolerance: SKEW_SECONDS, currentDate: new Date(nowMs) }));
    } catch (cause) {
      throw new AuthError(`Invalid token: ${(cause as Error).message}`, { cause });
    }
    const nowSec = nowMs / 1000;
    if (payload.application_id !== this.applicationId) throw new AuthError('application_id does not match this application');
    if (typeof payload.iat !== 'number') throw new AuthError('iat claim is required');
    if (payload.iat > nowSec + SKEW_SECONDS) throw new AuthError('iat is in the future');
    if (typeof payload.jti !== 'string' || payload.jti === '') throw new AuthError('jti claim is required');
    if (typeof payload.exp === 'number' && payload.exp - payload.iat > MAX_LIFETIME_SECONDS) throw new AuthError('exp is more than 24 hours after iat');
    return payload;
  }
}

/** Hex SHA-256 of the exact bytes sent (of the empty string for a GET). */
export function payloadHash(body: string): string {
  return createHash('sha256').update(body, 'utf8').digest('hex');
}

/** Signs webhooks with the account signature secret: HS256 with iat, jti, iss, payload_hash, api_key, application_id. */
export function webhookSigner(options: { secret: string; apiKey: string; applicationId: string }) {
  const key = new TextEncoder().encode(options.secret);
  return async (body: string, nowMs: number): Promise<string> =>
    new SignJWT({ payload_hash: payloadHash(body), api_key: options.apiKey, application_id: options.applicationId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuedAt(Math.floor(nowMs / 1000))
      .setJti(randomUUID())
      .setIssuer('Vonage')
      .sign(key);
}
export type WebhookSigner = ReturnType<typeof webhookSigner>;
