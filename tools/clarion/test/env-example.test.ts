import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../src/stack.js';

/** The variables named in .env.example (`NAME=` at the start of a line). */
const documented = new Set(
  readFileSync(join(REPO_ROOT, '.env.example'), 'utf8')
    .split('\n')
    .map((line) => /^([A-Z][A-Z0-9_]*)=/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined),
);

/** Each service's exported config schema (built dist), by its export name. */
const SCHEMAS = {
  contacts: 'ConfigSchema',
  dialer: 'DialerEnv',
  webhook: 'WebhookConfigSchema',
  reporter: 'ReporterConfigSchema',
} as const;

async function schemaKeys(service: keyof typeof SCHEMAS): Promise<string[]> {
  const mod = (await import(pathToFileURL(join(REPO_ROOT, 'services', service, 'dist', 'config.js')).href)) as Record<string, { shape?: Record<string, unknown> }>;
  const shape = mod[SCHEMAS[service]]?.shape;
  if (!shape) throw new Error(`services/${service}/dist/config.js exports no ${SCHEMAS[service]}`);
  return Object.keys(shape);
}

describe('.env.example', () => {
  it.each(Object.keys(SCHEMAS) as (keyof typeof SCHEMAS)[])('documents every variable of the %s config schema', async (service) => {
    const keys = await schemaKeys(service);
    expect(keys.length).toBeGreaterThan(5);
    expect(keys.filter((k) => !documented.has(k))).toEqual([]);
  });

  it("documents every variable of voice-sim's schema", () => {
    // voice-sim does not export its env schema: read its keys from the z.object source instead.
    const source = readFileSync(join(REPO_ROOT, 'services', 'voice-sim', 'src', 'config.ts'), 'utf8');
    const block = source.slice(source.indexOf('const EnvSchema = z.object({'));
    const keys = [...block.slice(0, block.indexOf('\n});')).matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!);
    expect(keys).toContain('VOICE_SIM_APPLICATION_ID');
    expect(keys.filter((k) => !documented.has(k))).toEqual([]);
  });

  it('documents the CLI connection variables', () => {
    for (const name of ['CLARION_NATS_URL', 'CLARION_API_TOKEN', 'CLARION_CONTACTS_URL', 'CLARION_REPORTER_URL']) expect(documented).toContain(name);
  });
});
