import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../src/stack.js';

type Service = 'contacts' | 'dialer' | 'webhook' | 'reporter' | 'voice-sim';

interface Case {
  service: Service;
  variable: string;
  /** The bad value; undefined removes a required variable. */
  value: string | undefined;
  kind: string;
}

const PEM = '-----BEGIN PRIVATE KEY-----\\nnot really a key\\n-----END PRIVATE KEY-----';

/** One bad value per kind of variable, for every service. */
const CASES: Case[] = [
  { service: 'contacts', variable: 'PORT', value: 'eighty', kind: 'port' },
  { service: 'contacts', variable: 'LOG_LEVEL', value: 'loud', kind: 'enum' },
  { service: 'contacts', variable: 'NATS_REPLICAS', value: '2', kind: 'replicas' },
  { service: 'contacts', variable: 'API_TOKEN', value: undefined, kind: 'required' },
  { service: 'contacts', variable: 'API_TOKEN', value: 'short', kind: 'too short' },
  { service: 'contacts', variable: 'DEFAULT_COUNTRY', value: 'usa', kind: 'country code' },
  { service: 'contacts', variable: 'MAX_IMPORT_BYTES', value: 'lots', kind: 'whole number' },
  { service: 'dialer', variable: 'PORT', value: '70000', kind: 'port out of range' },
  { service: 'dialer', variable: 'VONAGE_APPLICATION_ID', value: undefined, kind: 'required' },
  { service: 'dialer', variable: 'WEBHOOK_PUBLIC_URL', value: 'webhook.example', kind: 'url' },
  { service: 'dialer', variable: 'VOICE_API_URL', value: 'ftp://api.example', kind: 'http url' },
  { service: 'dialer', variable: 'ACCOUNT_CPS', value: '-1', kind: 'positive number' },
  { service: 'dialer', variable: 'DEFAULT_FROM', value: '555-0100', kind: 'E.164 number' },
  { service: 'dialer', variable: 'RINGING_TIMER_SECONDS', value: '500', kind: 'range' },
  { service: 'dialer', variable: 'VONAGE_PRIVATE_KEY', value: 'not a pem', kind: 'PEM' },
  { service: 'webhook', variable: 'WEBHOOK_PUBLIC_URL', value: undefined, kind: 'required' },
  { service: 'webhook', variable: 'SIGNATURE_MAX_AGE_SECONDS', value: '0', kind: 'range' },
  { service: 'webhook', variable: 'VONAGE_SIGNATURE_SECRET_FILE', value: '/nonexistent/secret', kind: 'unreadable file' },
  { service: 'webhook', variable: 'LOG_LEVEL', value: 'verbose', kind: 'enum' },
  { service: 'reporter', variable: 'API_TOKEN', value: undefined, kind: 'required' },
  { service: 'reporter', variable: 'BATCH_SIZE', value: '0', kind: 'range' },
  { service: 'reporter', variable: 'BATCH_MS', value: 'soon', kind: 'whole number' },
  { service: 'reporter', variable: 'NATS_REPLICAS', value: 'three', kind: 'replicas' },
  { service: 'voice-sim', variable: 'VOICE_SIM_APPLICATION_ID', value: undefined, kind: 'required' },
  { service: 'voice-sim', variable: 'VOICE_SIM_PUBLIC_KEY_FILE', value: '/nonexistent/public.pem', kind: 'unreadable file' },
  { service: 'voice-sim', variable: 'VOICE_SIM_CPS', value: '-3', kind: 'number ≥ 0' },
  { service: 'voice-sim', variable: 'VOICE_SIM_CONFIG_JSON', value: '{not json', kind: 'JSON' },
];

function run(service: Service, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const script = join(REPO_ROOT, 'services', service, 'dist', 'main.js');
    // Only PATH is inherited, so nothing from the developer's shell can make a case pass.
    execFile(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, output: `${stdout}\n${stderr}` });
    });
  });
}

describe('a bad configuration stops each service with a message naming the variable', () => {
  let dir: string;
  let base: Record<Service, Record<string, string>>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'clarion-config-'));
    const publicKey = join(dir, 'public.pem');
    writeFileSync(publicKey, '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n');
    // A NATS nobody listens on: should a case wrongly pass validation it hangs and the test fails.
    const common = { NATS_URL: 'nats://127.0.0.1:1', HOST: '127.0.0.1', PORT: '1' };
    base = {
      contacts: { ...common, API_TOKEN: 'a-good-token-123' },
      reporter: { ...common, API_TOKEN: 'a-good-token-123' },
      dialer: { ...common, VONAGE_APPLICATION_ID: 'app-1', VONAGE_PRIVATE_KEY: PEM, WEBHOOK_PUBLIC_URL: 'http://127.0.0.1:8083' },
      webhook: { ...common, WEBHOOK_PUBLIC_URL: 'http://127.0.0.1:8083' },
      'voice-sim': { ...common, VOICE_SIM_APPLICATION_ID: 'app-1', VOICE_SIM_PUBLIC_KEY_FILE: publicKey },
    };
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(CASES)('$service: $variable ($kind)', async ({ service, variable, value }) => {
    const env = { ...base[service] };
    if (value === undefined) delete env[variable];
    else env[variable] = value;
    const { code, output } = await run(service, env);
    expect(code, output).not.toBe(0);
    expect(code, output).not.toBeNull();
    expect(output).toContain(variable);
    expect(output, 'a config error is a message, not a stack trace').not.toMatch(/\n\s+at .+\.js:\d+:\d+/);
  }, 90_000);
});
