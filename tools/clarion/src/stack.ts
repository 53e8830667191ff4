import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startNatsServer, type NatsServerHandle } from '@clarion/nats';
import { startServiceProcess, type ServiceProcess } from '@clarion/testkit';
import { ensureDevSecrets, type DevSecrets } from './secrets.js';

/** The repository root, found from this file's place in tools/clarion/dist. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export const SERVICE_NAMES = ['voice-sim', 'webhook', 'contacts', 'reporter', 'dialer'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export const DEFAULT_PORTS: Record<ServiceName, number> = {
  'voice-sim': 3000,
  contacts: 8081,
  dialer: 8082,
  webhook: 8083,
  reporter: 8084,
};

export interface StackOptions {
  /** Folder for NATS data, store journals, logs and dev secrets. */
  stateDir: string;
  /** Use this NATS instead of starting one. */
  natsUrl?: string;
  /** Fixed ports (the defaults above when free); otherwise free ports are picked. */
  preferDefaultPorts?: boolean;
  /** The account's calls per second (dialer) and voice-sim's enforced limit. */
  accountCps: number;
  simCps?: number;
  /** voice-sim's time scale (1 = real call durations). */
  timeScale: number;
  seed?: string;
  mongoUrl?: string;
  /** Sign webhooks (voice-sim) and check them (webhook). */
  signed?: boolean;
  dialerReplicas?: number;
  /** Replicas of the other services (1 each by default); extra ones listen on free ports. */
  replicas?: Partial<Record<'webhook' | 'contacts' | 'reporter', number>>;
  /** The webhook base URL given to the dialer and webhook (e.g. a proxy in front of several webhooks). */
  webhookPublicUrl?: string;
  logLevel?: string;
  /** Extra variables per service. */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Where dev secrets live (defaults to <stateDir>/secrets). */
  secretsDir?: string;
}

export interface Stack {
  natsUrl: string;
  nats: NatsServerHandle | undefined;
  secrets: DevSecrets;
  services: Record<ServiceName, ServiceProcess[]>;
  url(name: ServiceName): string;
  /** Start one more dialer replica. */
  addDialer(): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

async function pickPort(name: ServiceName, preferDefault: boolean | undefined): Promise<number> {
  if (!preferDefault) return freePort();
  const { createServer } = await import('node:net');
  const free = await new Promise<boolean>((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(DEFAULT_PORTS[name], '0.0.0.0', () => server.close(() => resolveFree(true)));
  });
  return free ? DEFAULT_PORTS[name] : freePort();
}

const script = (name: ServiceName) => join(REPO_ROOT, 'services', name, 'dist', 'main.js');

/**
 * Start NATS (unless given), voice-sim and the four services as separate processes, on the
 * embedded store unless `mongoUrl` is set. Every service waits for its own /readyz.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  mkdirSync(options.stateDir, { recursive: true });
  const logDir = join(options.stateDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const secrets = ensureDevSecrets(options.secretsDir ?? join(options.stateDir, 'secrets'));
  const nats = options.natsUrl ? undefined : await startNatsServer({ dataDir: join(options.stateDir, 'nats') });
  const natsUrl = options.natsUrl ?? nats!.url;
  const started: ServiceProcess[] = [];

  const ports = {} as Record<ServiceName, number>;
  for (const name of SERVICE_NAMES) ports[name] = await pickPort(name, options.preferDefaultPorts);
  const url = (name: ServiceName) => `http://127.0.0.1:${ports[name]}`;

  const common = {
    NATS_URL: natsUrl,
    LOG_LEVEL: options.logLevel ?? 'info',
    HOST: '127.0.0.1',
  };
  // Replicas share MongoDB; on the embedded store each replica keeps its own journal folder.
  const storeEnv = (name: string, suffix = ''): Record<string, string> =>
    options.mongoUrl
      ? { MONGO_URL: options.mongoUrl, MONGO_DB: `clarion_${name}` }
      : { DATA_DIR: join(options.stateDir, 'store', `${name}${suffix}`) };
  const webhookUrl = () => options.webhookPublicUrl ?? url('webhook');
  const signature: Record<string, string> = options.signed ? { VONAGE_SIGNATURE_SECRET: secrets.signatureSecret } : {};

  const envFor = (name: ServiceName, suffix = ''): Record<string, string> => {
    const own: Record<ServiceName, Record<string, string>> = {
      'voice-sim': {
        VOICE_SIM_APPLICATION_ID: secrets.applicationId,
        VOICE_SIM_PUBLIC_KEY_FILE: secrets.publicKeyFile,
        VOICE_SIM_CPS: String(options.simCps ?? options.accountCps),
        VOICE_SIM_TIME_SCALE: String(options.timeScale),
        VOICE_SIM_LOG_FILE: join(logDir, 'voice-sim-calls.jsonl'),
        ...(options.seed ? { VOICE_SIM_SEED: options.seed } : {}),
        ...(options.signed ? { VOICE_SIM_SIGNATURE_SECRET: secrets.signatureSecret } : {}),
      },
      webhook: { WEBHOOK_PUBLIC_URL: webhookUrl(), ...signature },
      contacts: { API_TOKEN: secrets.apiToken, ...storeEnv('contacts', suffix) },
      reporter: { API_TOKEN: secrets.apiToken, ...storeEnv('reporter', suffix) },
      dialer: {
        VOICE_API_URL: url('voice-sim'),
        VONAGE_APPLICATION_ID: secrets.applicationId,
        VONAGE_PRIVATE_KEY_FILE: secrets.privateKeyFile,
        WEBHOOK_PUBLIC_URL: webhookUrl(),
        ACCOUNT_CPS: String(options.accountCps),
        // voice-sim forgets its calls when it restarts, and its calls are short: ask it about a call
        // with no final event after 2 minutes (scaled), not after the production default of ~12.
        ATTEMPT_RESULT_TIMEOUT_MS: String(Math.max(20_000, Math.round(120_000 * Math.min(1, options.timeScale)))),
        STATUS_RECHECK_MS: '15000',
      },
    };
    return { ...common, ...own[name], ...(options.env?.[name] ?? {}) };
  };

  const launch = async (name: ServiceName, port: number, suffix = ''): Promise<ServiceProcess> => {
    const handle = await startServiceProcess({
      name: `${name}${suffix}`,
      script: script(name),
      env: envFor(name, suffix),
      port,
      logFile: join(logDir, `${name}${suffix}.log`),
    });
    started.push(handle);
    return handle;
  };

  const services = {} as Record<ServiceName, ServiceProcess[]>;
  let dialers = 0;
  const addDialer = async () => {
    dialers += 1;
    const port = dialers === 1 ? ports.dialer : await freePort();
    const handle = await launch('dialer', port, dialers === 1 ? '' : `-${dialers}`);
    services.dialer.push(handle);
    return handle;
  };

  try {
    const [sim, webhook, contacts, reporter] = await Promise.all([
      launch('voice-sim', ports['voice-sim']),
      launch('webhook', ports.webhook),
      launch('contacts', ports.contacts),
      launch('reporter', ports.reporter),
    ]);
    Object.assign(services, { 'voice-sim': [sim], webhook: [webhook], contacts: [contacts], reporter: [reporter], dialer: [] });
    for (const name of ['webhook', 'contacts', 'reporter'] as const) {
      for (let i = 2; i <= (options.replicas?.[name] ?? 1); i += 1) services[name].push(await launch(name, await freePort(), `-${i}`));
    }
    for (let i = 0; i < (options.dialerReplicas ?? 1); i += 1) await addDialer();
  } catch (error) {
    await Promise.all(started.map((s) => s.stop(2000)));
    await nats?.stop();
    throw error;
  }

  return {
    natsUrl,
    nats,
    secrets,
    services,
    url,
    addDialer,
    stop: async () => {
      // Producers first, then consumers, then the simulator, then NATS.
      await Promise.all(services.dialer.map((d) => d.stop()));
      await Promise.all([...services.contacts, ...services.webhook].map((s) => s.stop()));
      await Promise.all([...services.reporter, ...services['voice-sim']].map((s) => s.stop()));
      await nats?.stop();
    },
  };
}
