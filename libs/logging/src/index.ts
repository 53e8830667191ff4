import { pino, type Logger, type LoggerOptions } from 'pino';

/** Mask a phone number for logs: keep the country prefix and the last two digits. */
export function maskNumber(number: string): string {
  const digits = number.replace(/[^\d]/g, '');
  if (digits.length <= 4) return '*'.repeat(digits.length);
  const head = number.startsWith('+') ? `+${digits.slice(0, 2)}` : digits.slice(0, 2);
  return `${head}${'*'.repeat(digits.length - 4)}${digits.slice(-2)}`;
}

const NUMBER_KEYS = new Set(['number', 'to', 'from', 'msisdn', 'phone']);
const PHONE_IN_TEXT = /\+?\d[\d\s().-]{6,}\d/g;

function maskValue(value: unknown): unknown {
  if (typeof value === 'string') return maskNumber(value);
  if (value && typeof value === 'object' && 'number' in value) {
    return { ...(value as object), number: maskNumber(String((value as { number: unknown }).number)) };
  }
  return value;
}

/** Mask every phone-number-looking run of digits inside free text. */
export function maskText(text: string): string {
  return text.replace(PHONE_IN_TEXT, (match) => maskNumber(match));
}

/**
 * A pino logger writing one JSON line per event, with phone numbers masked in the well-known
 * fields (`number`, `to`, `from`, …) and in messages.
 */
export function createLogger(options: { service: string; level?: string; destination?: NodeJS.WritableStream }): Logger {
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    base: { service: options.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => {
        const masked: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(object)) {
          masked[key] = NUMBER_KEYS.has(key) ? maskValue(value) : value;
        }
        return masked;
      },
    },
    hooks: {
      logMethod(args, method) {
        const masked = args.map((arg) => (typeof arg === 'string' ? maskText(arg) : arg)) as typeof args;
        method.apply(this, masked);
      },
    },
  };
  return options.destination ? pino(config, options.destination as pino.DestinationStream) : pino(config);
}

export type { Logger };
