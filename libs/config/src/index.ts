import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Configuration that failed validation; `problems` names each variable and the expected form. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'invalid_config';
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      `invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`,
    );
  }
}

type Env = Record<string, string | undefined>;

/**
 * Parse environment variables once, at start. The schema's keys are the variable names, so every
 * error names the variable. Empty strings count as unset.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Env): z.infer<S> {
  const cleaned: Env = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') cleaned[key] = value.trim();
  }
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => ({
      variable: String(issue.path[0] ?? '(config)'),
      message: issue.message,
    })),
  );
}

/** A TCP port number. */
export const port = (fallback: number) =>
  z.coerce.number({ message: 'must be a port number (1-65535)' }).int().min(1).max(65535).default(fallback);

/** A positive number, e.g. a rate. */
export const positiveNumber = (fallback: number) =>
  z.coerce.number({ message: 'must be a positive number' }).positive('must be a positive number').default(fallback);

/** A whole number ≥ 0. */
export const count = (fallback: number) =>
  z.coerce.number({ message: 'must be a whole number' }).int('must be a whole number').min(0).default(fallback);

/** `true/false/1/0/yes/no`. */
export const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
    .transform((v) => v === 'true' || v === '1' || v === 'yes')
    .default(fallback);

/** An http(s) URL. */
export const httpUrl = () => z.url({ protocol: /^https?$/, message: 'must be an http(s) URL such as http://127.0.0.1:8080' });

/** Log levels pino knows. */
export const logLevel = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    message: 'must be one of fatal, error, warn, info, debug, trace, silent',
  })
  .default('info');

/** The NATS variables every service reads. */
export const natsVariables = {
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_TOKEN: z.string().optional(),
  NATS_CREDS_FILE: z.string().optional(),
  NATS_TLS_CA_FILE: z.string().optional(),
  NATS_REPLICAS: z.coerce.number({ message: 'must be 1, 3 or 5' }).int().refine((n) => [1, 3, 5].includes(n), 'must be 1, 3 or 5').default(1),
};

/** Turn the NATS variables into connection settings. */
export function natsSettings(
  config: {
    NATS_URL: string;
    NATS_USER?: string | undefined;
    NATS_PASSWORD?: string | undefined;
    NATS_TOKEN?: string | undefined;
    NATS_CREDS_FILE?: string | undefined;
    NATS_TLS_CA_FILE?: string | undefined;
  },
  name: string,
) {
  return {
    servers: config.NATS_URL,
    name,
    user: config.NATS_USER,
    pass: config.NATS_PASSWORD,
    token: config.NATS_TOKEN,
    credsFile: config.NATS_CREDS_FILE,
    tlsCaFile: config.NATS_TLS_CA_FILE,
  };
}

/** Read a secret from a file (`*_FILE` variables); the value is never logged. */
export function readSecretFile(path: string, variable: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (cause) {
    throw new ConfigError([{ variable, message: `cannot read file ${path}: ${(cause as Error).message}` }]);
  }
}

export { z };
