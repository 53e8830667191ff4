import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../src/stack.js';

const COMPOSE = join(REPO_ROOT, 'docker-compose.yml');
const DCLINT = join(REPO_ROOT, 'node_modules', '.bin', 'dclint');

describe('docker-compose.yml', () => {
  it('passes dclint with no errors and no warnings', () => {
    // execFileSync throws (and fails the test with dclint's report) on a non-zero exit.
    const output = execFileSync(DCLINT, [COMPOSE, '--max-warnings', '0', '--color', 'false'], { encoding: 'utf8' });
    expect(output).not.toMatch(/error|warning/);
  });

  it('runs NATS, MongoDB, voice-sim and the four services, each with a healthcheck and a restart policy', () => {
    const compose = parse(readFileSync(COMPOSE, 'utf8'), { merge: true }) as {
      services: Record<string, { healthcheck?: { test: unknown }; restart?: string; depends_on?: Record<string, { condition: string }> }>;
    };
    const names = Object.keys(compose.services);
    for (const required of ['nats', 'mongo', 'voice-sim', 'contacts', 'dialer', 'webhook', 'reporter']) {
      expect(names).toContain(required);
    }
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.healthcheck?.test, `${name} has a healthcheck`).toBeDefined();
      expect(service.restart, `${name} has a restart policy`).toBeDefined();
    }
    for (const name of ['contacts', 'dialer', 'webhook', 'reporter']) {
      expect(compose.services[name]?.depends_on?.nats?.condition).toBe('service_healthy');
    }
  });
});
