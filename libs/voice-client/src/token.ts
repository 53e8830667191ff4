import { importPKCS8, SignJWT, type CryptoKey, type KeyObject } from 'jose';
import { randomUUID, createPrivateKey } from 'node:crypto';

export interface TokenSourceOptions {
  applicationId: string;
  privateKey: string;
  clock: () => number;
  /** Token validity in seconds (Vonage default 15 min). */
  ttlSeconds?: number;
  /** How long one minted token is reused, in ms; bounded so RS256 signing never caps throughput. */
  reuseMs?: number;
}

/** Mints RS256 application JWTs and reuses each for a bounded time. */
export function createTokenSource(options: TokenSourceOptions): () => Promise<string> {
  const ttl = options.ttlSeconds ?? 900;
  const reuseMs = Math.min(options.reuseMs ?? 30_000, (ttl * 1000) / 2);
  let key: Promise<CryptoKey | KeyObject> | undefined;
  let current: { token: string; mintedAt: number } | undefined;
  let pending: Promise<string> | undefined;

  const loadKey = (): Promise<CryptoKey | KeyObject> => {
    // PKCS#1 ("BEGIN RSA PRIVATE KEY") keys are common from Vonage; node's crypto reads both forms.
    key ??= options.privateKey.includes('BEGIN PRIVATE KEY')
      ? importPKCS8(options.privateKey, 'RS256')
      : Promise.resolve(createPrivateKey(options.privateKey));
    return key;
  };

  const mint = async (): Promise<string> => {
    const now = options.clock();
    const iat = Math.floor(now / 1000);
    const token = await new SignJWT({ application_id: options.applicationId })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .setIssuedAt(iat)
      .setJti(randomUUID())
      .setExpirationTime(iat + ttl)
      .sign(await loadKey());
    current = { token, mintedAt: now };
    return token;
  };

  return async () => {
    const now = options.clock();
    if (current && now - current.mintedAt < reuseMs && now >= current.mintedAt) return current.token;
    // One mint at a time: concurrent callers share it.
    pending ??= mint().finally(() => {
      pending = undefined;
    });
    return pending;
  };
}
