import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, flag, httpUrl, loadConfig, port, positiveNumber } from './index.js';

const schema = z.object({
  PORT: port(8080),
  RATE: positiveNumber(3),
  SIGNED: flag(false),
  TARGET: httpUrl(),
});

describe('loadConfig', () => {
  it('parses and applies defaults, treating empty values as unset', () => {
    expect(loadConfig(schema, { TARGET: 'http://127.0.0.1:3000', PORT: '' })).toEqual({
      PORT: 8080,
      RATE: 3,
      SIGNED: false,
      TARGET: 'http://127.0.0.1:3000',
    });
  });

  it('names every bad variable and the expected form', () => {
    try {
      loadConfig(schema, { PORT: 'eighty', RATE: '-1', SIGNED: 'maybe' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems;
      expect(problems.map((p) => p.variable).sort()).toEqual(['PORT', 'RATE', 'SIGNED', 'TARGET']);
      expect((error as Error).message).toMatch(/PORT: must be a port number/);
      expect((error as Error).message).toMatch(/SIGNED: must be true or false/);
    }
  });
});
