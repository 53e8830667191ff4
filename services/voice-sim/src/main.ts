import { ConfigError } from '@clarion/config';
import { createLogger } from '@clarion/logging';
import { listen } from '@clarion/http';
import { createVoiceSim } from './app.js';
import { loadVoiceSimConfig } from './config.js';

const config = (() => {
  try {
    return loadVoiceSimConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // A bad configuration is one plain message naming the variable, not a stack trace.
    process.stderr.write(`voice-sim: ${error.message}\n`);
    process.exit(1);
  }
})();
const logger = createLogger({ service: 'voice-sim', level: config.logLevel });
const sim = createVoiceSim({ config, logger });
const server = await listen(sim.app, config.port, config.host);
const address = server.address();
logger.info({ port: typeof address === 'object' && address ? address.port : config.port }, 'listening');

let shuttingDown = false;
const shutdown = async (signal: string) => {
  if (shuttingDown) return;
  shuttingDown = true;
  logger.info({ signal }, 'shutting down');
  const force = setTimeout(() => process.exit(1), 9500);
  server.close();
  // Calls in progress keep playing (and sending webhooks) for up to 7 s, then are cut.
  await sim.stop({ graceMs: 7000 });
  server.closeAllConnections();
  clearTimeout(force);
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
