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
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
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
    apiToken: randomBytes(24).toString('base64url'),
  };
  writeFileSync(secrets.privateKeyFile, privateKey, { mode: 0o600 });
  writeFileSync(secrets.publicKeyFile, publicKey);
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
