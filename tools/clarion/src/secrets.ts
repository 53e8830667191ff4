import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Development credentials, generated at first run into a git-ignored folder; never real secrets. */
export interface DevSecrets {
  applicationId: string;
  privateKeyFile: string;
  publicKeyFile: string;
  signatureSecret: string;
  apiToken: string;
}

/** Load the dev secrets from `dir`, creating them (RSA key pair, tokens) when missing. */
export function ensureDevSecrets(dir: string): DevSecrets {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'dev-secrets.json');
  if (existsSync(file)) {
    const existing = JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
    // Tokens made before this rule could start with '-'; replace such a token once (the stack hands it to every service).
    if (!existing.apiToken.startsWith('-')) return existing;
    const repaired = { ...existing, apiToken: newApiToken() };
    writeFileSync(file, JSON.stringify(repaired, null, 2), { mode: 0o600 });
    return repaired;
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const secrets: DevSecrets = {
    applicationId: randomUUID(),
    privateKeyFile: join(dir, 'private.key'),
    publicKeyFile: join(dir, 'public.pem'),
    signatureSecret: randomBytes(24).toString('base64url'),
    apiToken: newApiToken(),
  };
  writeFileSync(secrets.privateKeyFile, privateKey, { mode: 0o600 });
  writeFileSync(secrets.publicKeyFile, publicKey);
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/**
 * A random API token that never starts with '-': base64url can, and `--token -abc…` would then be
 * read as an option by the CLI's argument parser.
 */
export function newApiToken(): string {
  return `ck${randomBytes(24).toString('base64url')}`;
}
