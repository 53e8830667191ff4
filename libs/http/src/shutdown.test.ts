import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { closeServer, onShutdown, type ShutdownEvent } from './index.js';

function fakeHost() {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  return { emitter, exits, host: { once: (s: string, l: () => void) => emitter.once(s, l), exit: (code: number) => void exits.push(code) } };
}

describe('onShutdown', () => {
  it('runs the steps in order once, then exits 0', async () => {
    const { emitter, exits, host } = fakeHost();
    const order: string[] = [];
    const events: ShutdownEvent[] = [];
    const { shutdown } = onShutdown({
      host,
      onEvent: (e) => events.push(e),
      steps: [
        { name: 'http', run: async () => void order.push('http') },
        { name: 'nats', run: () => void order.push('nats') },
      ],
    });
    emitter.emit('SIGTERM');
    emitter.emit('SIGTERM');
    emitter.emit('SIGINT');
    expect(await shutdown('SIGTERM')).toBe(0);
    expect(order).toEqual(['http', 'nats']);
    expect(exits).toEqual([0]);
    expect(events.map((e) => e.type)).toEqual(['started', 'stopped']);
  });

  it('keeps going after a failed step and exits 1', async () => {
    const { exits, host } = fakeHost();
    const order: string[] = [];
    const events: ShutdownEvent[] = [];
    const { shutdown } = onShutdown({
      host,
      onEvent: (e) => events.push(e),
      steps: [
        { name: 'http', run: () => Promise.reject(new Error('boom')) },
        { name: 'nats', run: () => void order.push('nats') },
      ],
    });
    expect(await shutdown('SIGTERM')).toBe(1);
    expect(order).toEqual(['nats']);
    expect(exits).toEqual([1]);
    expect(events.find((e) => e.type === 'step-failed')).toMatchObject({ step: 'http' });
  });

  it('exits 1 naming the stuck step when the deadline passes', async () => {
    const { exits, host } = fakeHost();
    const events: ShutdownEvent[] = [];
    const { shutdown } = onShutdown({ host, timeoutMs: 50, onEvent: (e) => events.push(e), steps: [{ name: 'stuck', run: () => new Promise(() => undefined) }] });
    expect(await shutdown('SIGTERM')).toBe(1);
    expect(exits).toEqual([1]);
    expect(events.find((e) => e.type === 'timeout')).toMatchObject({ step: 'stuck' });
  });
});

describe('closeServer', () => {
  it('resolves once the server stopped listening', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    await closeServer(server, 100);
    expect(server.listening).toBe(false);
  });
});
