import { ConfigError } from '@clarion/config';
import { describe, expect, it } from 'vitest';
import { loadDialerConfig } from '../src/index.js';
import { privateKey } from './harness.js';

const base = { VONAGE_APPLICATION_ID: 'app-test', VONAGE_PRIVATE_KEY: privateKey, WEBHOOK_PUBLIC_URL: 'http://127.0.0.1:8083' };

const problemsOf = (env: Record<string, string>) => {
  try {
    loadDialerConfig({ ...base, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('dialer configuration: call slots', () => {
  it('refuses an account cap of 0 calls (nothing would ever be dialled)', () => {
    expect(problemsOf({ ACCOUNT_MAX_CONCURRENT: '0' })).toEqual([{ variable: 'ACCOUNT_MAX_CONCURRENT', message: 'must be a whole number ≥ 1' }]);
    expect(problemsOf({ ACCOUNT_MAX_CONCURRENT: 'many' })).toEqual([{ variable: 'ACCOUNT_MAX_CONCURRENT', message: 'must be a whole number ≥ 1' }]);
  });

  it('refuses a slot timeout under a second (0 would also mean a bucket whose keys never age out)', () => {
    expect(problemsOf({ CALL_SLOT_TIMEOUT_MS: '0' })).toEqual([{ variable: 'CALL_SLOT_TIMEOUT_MS', message: 'must be a whole number of ms ≥ 1000' }]);
  });

  it('takes the defaults', () => {
    const config = loadDialerConfig(base);
    expect(config.ACCOUNT_MAX_CONCURRENT).toBe(1000);
    expect(config.CALL_SLOT_TIMEOUT_MS).toBe(900_000);
  });
});

describe('dialer configuration: claims', () => {
  it('refuses a claim grace no longer than the Voice API timeout (an in-flight create would look abandoned)', () => {
    expect(problemsOf({ CLAIM_GRACE_MS: '10000', VOICE_API_TIMEOUT_MS: '10000' })).toEqual([
      { variable: 'CLAIM_GRACE_MS', message: 'must be longer than VOICE_API_TIMEOUT_MS (10000 ms)' },
    ]);
    expect(problemsOf({ CLAIM_GRACE_MS: '3000', VOICE_API_TIMEOUT_MS: '1500' })).toEqual([]);
  });
});
