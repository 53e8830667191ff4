import { afterAll, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@clarion/nats';
import { startStack, type Stack, type StackOptions } from '../src/stack.js';
import { connect } from '../src/client.js';

/** What a test file's suite gets from `useStack`. */
export interface SuiteStack {
  stack: Stack;
  nc: NatsConnection;
  /** The stack's own state folder (logs, voice-sim's ground truth), removed afterwards. */
  stateDir: string;
}

/**
 * One stack for a test file's suite: started in `beforeAll` in a fresh state folder with a NATS
 * connection named after the suite, stopped and removed in `afterAll`. `use` receives it once started.
 */
export function useStack(name: string, options: Omit<StackOptions, 'stateDir'>, use: (suite: SuiteStack) => void, startTimeoutMs?: number): void {
  const suite: Partial<SuiteStack> = {};
  beforeAll(async () => {
    suite.stateDir = mkdtempSync(join(tmpdir(), `clarion-${name}-`));
    suite.stack = await startStack({ stateDir: suite.stateDir, ...options });
    suite.nc = await connect(suite.stack.natsUrl, `${name}-test`);
    use(suite as SuiteStack);
  }, startTimeoutMs);
  afterAll(async () => {
    await suite.nc?.close();
    await suite.stack?.stop();
    if (suite.stateDir) rmSync(suite.stateDir, { recursive: true, force: true });
  });
}
