export { startNatsServer, freePort, type NatsServerHandle } from '@clarion/nats';

/** Wait until `check` returns a truthy value, polling; fail with `message` after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  options: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 25;
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > until) {
      throw new Error(`${options.message ?? 'condition not met'} within ${timeoutMs} ms`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
export { startServiceProcess, type ServiceProcess, type ServiceProcessOptions } from './process.js';
