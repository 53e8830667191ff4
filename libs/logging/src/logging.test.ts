import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger, maskNumber } from './index.js';

describe('logging', () => {
  it('masks phone numbers in known fields and in messages', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const logger = createLogger({ service: 'test', destination });
    logger.info({ number: '+14155550123', broadcastId: 'b-1' }, 'calling +1 415 555 0123 now');
    const line = JSON.parse(lines[0] ?? '{}') as Record<string, string>;
    expect(line.number).toBe(maskNumber('+14155550123'));
    expect(line.number).not.toContain('555012');
    expect(line.msg).not.toContain('0123');
    expect(line.broadcastId).toBe('b-1');
    expect(line.service).toBe('test');
  });

  it('keeps the country prefix and last two digits only', () => {
    expect(maskNumber('+442079460123')).toBe('+44********23');
  });
});
