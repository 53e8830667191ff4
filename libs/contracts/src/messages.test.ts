import { describe, expect, it } from 'vitest';
import { BroadcastRequest } from './messages.js';
import { decodeJson, parseWith, ValidationError } from './errors.js';

const minimal = { name: 'Test', message: { text: 'Hello' }, audience: { numbers: ['+14155550100'] } };

describe('BroadcastRequest', () => {
  it('fills documented defaults', () => {
    const request = parseWith(BroadcastRequest, minimal, 'broadcast request');
    expect(request.message).toMatchObject({ language: 'en-US', repeat: 1, style: 0 });
    expect(request.retry).toEqual({ maxAttempts: 3, delaySeconds: 300, on: ['busy', 'no_answer', 'failed'] });
    expect(request.priority).toBe('normal');
    expect(request.audience.defaultCountry).toBe('US');
  });

  it.each([
    [{ ...minimal, message: undefined }, 'message'],
    [{ ...minimal, message: {} }, 'message'],
    [{ ...minimal, message: { text: 'a', audioUrl: 'https://example.com/a.mp3' } }, 'message'],
    [{ ...minimal, message: { text: 'x'.repeat(1501) } }, 'message.text'],
    [{ ...minimal, audience: { numbers: [] } }, 'audience'],
    [{ ...minimal, audience: { listIds: ['bad id!'] } }, 'audience.listIds.0'],
    [{ ...minimal, retry: { maxAttempts: 0 } }, 'retry.maxAttempts'],
    [{ ...minimal, window: { start: '25:00', end: '08:00' } }, 'window.start'],
    [{ ...minimal, window: { start: '08:00', end: '20:00', timezone: 'Mars/Olympus' } }, 'window.timezone'],
    [{ ...minimal, priority: 'urgent' }, 'priority'],
    [{ ...minimal, surprise: true }, '(root)'],
  ])('rejects %j naming %s', (value, path) => {
    try {
      parseWith(BroadcastRequest, value, 'broadcast request');
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).details.map((d) => d.path)).toContain(path);
    }
  });

  it('decodeJson names bad JSON and invalid UTF-8 as client errors', () => {
    expect(() => decodeJson('{"a":', 'request')).toThrow(/not valid UTF-8 JSON/);
    expect(() => decodeJson(new Uint8Array([0x7b, 0xff, 0x7d]), 'request')).toThrow(ValidationError);
    expect(decodeJson(new TextEncoder().encode('{"a":1}'), 'request')).toEqual({ a: 1 });
  });
});
