import { loadConfig, logLevel, natsVariables, port, z } from '@clarion/config';
import { defaultNormaliserThreads } from '@clarion/phone';

/** Environment variables of the contacts service (README.md lists them). */
export const ConfigSchema = z.object({
  PORT: port(8081),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: logLevel,
  ...natsVariables,
  API_TOKEN: z.string({ message: 'is required (the bearer token of the REST API)' }).min(8, 'must be at least 8 characters'),
  MONGO_URL: z.string().optional(),
  MONGO_DB: z.string().default('clarion'),
  DATA_DIR: z.string().optional(),
  DEFAULT_COUNTRY: z
    .string()
    .regex(/^[A-Z]{2}$/, 'must be an ISO 3166 alpha-2 code such as US')
    .default('US'),
  MAX_IMPORT_BYTES: z.coerce
    .number({ message: 'must be a whole number of bytes' })
    .int()
    .positive()
    .default(256 * 1024 * 1024),
  IMPORT_THREADS: z.coerce
    .number({ message: 'must be a whole number of threads' })
    .int()
    .min(0)
    .max(8)
    .default(defaultNormaliserThreads()),
});
export type Config = z.infer<typeof ConfigSchema>;

/** Parse and check the environment once, at start; errors name the variable. */
export function loadContactsConfig(env: Record<string, string | undefined>): Config {
  return loadConfig(ConfigSchema, env);
}
