import { count, loadConfig, logLevel, natsVariables, port, z } from '@clarion/config';

/** The reporter's environment variables; keys are the variable names. */
export const ReporterConfigSchema = z.object({
  PORT: port(8084),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: logLevel,
  ...natsVariables,
  API_TOKEN: z.string({ message: 'is required (the token REST clients send as Bearer)' }).min(8, 'must be at least 8 characters'),
  MONGO_URL: z.string().optional(),
  MONGO_DB: z.string().default('clarion'),
  DATA_DIR: z.string().optional(),
  BATCH_SIZE: count(500).refine((n) => n >= 1 && n <= 10_000, 'must be between 1 and 10000'),
  BATCH_MS: count(50).refine((n) => n <= 10_000, 'must be at most 10000'),
});
export type ReporterConfig = z.infer<typeof ReporterConfigSchema>;

/** Parse the environment once at start; throws a ConfigError naming each bad variable. */
export function loadReporterConfig(env: Record<string, string | undefined>): ReporterConfig {
  return loadConfig(ReporterConfigSchema, env);
}
