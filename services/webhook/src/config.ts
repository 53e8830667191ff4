import { httpUrl, loadConfig, logLevel, natsVariables, port, readSecretFile, z } from '@clarion/config';

/** Environment variables of the webhook service (see README.md). */
export const WebhookConfigSchema = z.object({
  PORT: port(8083),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: logLevel,
  ...natsVariables,
  /** Base URL the Voice API uses to reach this service (for the NCCO input eventUrl). */
  WEBHOOK_PUBLIC_URL: httpUrl(),
  VONAGE_SIGNATURE_SECRET: z.string().optional(),
  VONAGE_SIGNATURE_SECRET_FILE: z.string().optional(),
  SIGNATURE_MAX_AGE_SECONDS: z.coerce.number({ message: 'must be a whole number of seconds' }).int().min(1).max(86_400).default(300),
  MAX_BODY_BYTES: z.coerce.number({ message: 'must be a whole number of bytes' }).int().min(256).max(10_000_000).default(64 * 1024),
  PUBLISH_TIMEOUT_MS: z.coerce.number({ message: 'must be a whole number of milliseconds' }).int().min(100).max(30_000).default(2000),
  /**
   * Keep retrying a publish JetStream did not acknowledge for this long before answering 503 (0: one
   * try). Vonage retries a failed event only once, so this is what bridges a NATS restart.
   */
  PUBLISH_DEADLINE_MS: z.coerce.number({ message: 'must be a whole number of milliseconds' }).int().min(0).max(60_000).default(8000),
});

/** Validated configuration, with the signature secret resolved from its file when given. */
export type WebhookConfig = z.infer<typeof WebhookConfigSchema> & { signatureSecret: string | undefined };

/** Parse the environment once at start; throws ConfigError naming each bad variable. */
export function loadWebhookConfig(env: Record<string, string | undefined>): WebhookConfig {
  const config = loadConfig(WebhookConfigSchema, env);
  const signatureSecret =
    config.VONAGE_SIGNATURE_SECRET ??
    (config.VONAGE_SIGNATURE_SECRET_FILE !== undefined
      ? readSecretFile(config.VONAGE_SIGNATURE_SECRET_FILE, 'VONAGE_SIGNATURE_SECRET_FILE')
      : undefined);
  return { ...config, WEBHOOK_PUBLIC_URL: config.WEBHOOK_PUBLIC_URL.replace(/\/+$/, ''), signatureSecret };
}
