import type { Server } from 'node:http';

/** One thing to do at shutdown, in order (stop taking work, finish in-flight work, drain, close). */
export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown> | unknown;
}

/** What happened during shutdown, for the service to log (libraries do not log). */
export type ShutdownEvent =
  | { type: 'started'; signal: string }
  | { type: 'step-failed'; step: string; error: unknown }
  | { type: 'timeout'; step: string; timeoutMs: number }
  | { type: 'stopped'; ok: boolean; ms: number };

/** The part of `process` the helper uses; injected so tests need no real signals or exits. */
export interface ShutdownHost {
  once(signal: string, listener: () => void): unknown;
  exit(code: number): void;
}

export interface ShutdownOptions {
  steps: ShutdownStep[];
  /** Exit 1 when the steps take longer than this (default 9 s, under an orchestrator's 10 s grace). */
  timeoutMs?: number;
  onEvent?: (event: ShutdownEvent) => void;
  signals?: string[];
  host?: ShutdownHost;
  clock?: () => number;
}

/**
 * Run `steps` in order on the first SIGTERM/SIGINT, then exit 0 (1 if a step failed or the
 * deadline passed). A failed step does not stop the later ones: NATS is drained even if HTTP
 * failed to close. Further signals during shutdown are ignored. Returns `shutdown` for tests.
 */
export function onShutdown(options: ShutdownOptions): { shutdown: (signal: string) => Promise<number> } {
  const host: ShutdownHost = options.host ?? process;
  const clock = options.clock ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 9_000;
  let running: Promise<number> | undefined;
  const shutdown = (signal: string): Promise<number> => {
    running ??= (async () => {
      const started = clock();
      options.onEvent?.({ type: 'started', signal });
      let current = '(none)';
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<number>((resolve) => {
        timer = setTimeout(() => {
          options.onEvent?.({ type: 'timeout', step: current, timeoutMs });
          resolve(1);
        }, timeoutMs);
        timer.unref?.();
      });
      const work = (async () => {
        let ok = true;
        for (const step of options.steps) {
          current = step.name;
          try {
            await step.run();
          } catch (error) {
            ok = false;
            options.onEvent?.({ type: 'step-failed', step: step.name, error });
          }
        }
        options.onEvent?.({ type: 'stopped', ok, ms: clock() - started });
        return ok ? 0 : 1;
      })();
      const code = await Promise.race([work, deadline]);
      clearTimeout(timer);
      host.exit(code);
      return code;
    })();
    return running;
  };
  const listen = (signal: string) => host.once(signal, () => {
    void shutdown(signal);
    // Keep swallowing repeats of this signal while shutting down (a second Ctrl-C must not kill mid-drain).
    listen(signal);
  });
  for (const signal of options.signals ?? ['SIGTERM', 'SIGINT']) listen(signal);
  return { shutdown };
}

/**
 * Stop accepting connections and resolve when the server has closed: idle keep-alive sockets are
 * closed at once, busy ones get `graceMs` to finish their response before they are cut.
 */
export function closeServer(server: Server, graceMs = 2_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.close((error) => (error && (error as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING' ? reject(error) : resolve()));
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), graceMs).unref();
  });
}

/** The two pino-style methods `logShutdownEvents` needs. */
export interface ShutdownLog {
  info(object: object, message: string): void;
  error(object: object, message: string): void;
}

/** An `onEvent` that writes each shutdown event through the service's own logger. */
export function logShutdownEvents(logger: ShutdownLog): (event: ShutdownEvent) => void {
  return (event) => {
    if (event.type === 'started') logger.info({ signal: event.signal }, 'shutting down');
    else if (event.type === 'step-failed') logger.error({ err: event.error, step: event.step }, 'shutdown step failed');
    else if (event.type === 'timeout') logger.error({ step: event.step, timeoutMs: event.timeoutMs }, 'shutdown took too long; exiting');
    else logger.info({ ok: event.ok, ms: event.ms }, 'stopped');
  };
}
