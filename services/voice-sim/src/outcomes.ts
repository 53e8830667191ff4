import { createHash } from 'node:crypto';
import type { NumberOverride, SimOutcome, SimSettings } from './config.js';

/** A deterministic number in [0, 1) from the seed and a key; the same inputs always give the same value. */
export function uniform(seed: string, ...key: (string | number)[]): number {
  const digest = createHash('sha256').update(`${seed}\u0000${key.join('\u0000')}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/** Deterministic bytes formatted as a v4-style UUID (used when ids must repeat across runs). */
export function seededUuid(seed: string, ...key: (string | number)[]): string {
  const h = createHash('sha256').update(`${seed}\u0000uuid\u0000${key.join('\u0000')}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16] ?? '0', 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The documented default rule: the called number's last digit picks the outcome. */
export const LAST_DIGIT_OUTCOMES: readonly SimOutcome[] = [
  'answered_ack', // 0
  'answered_ack', // 1
  'answered_ack', // 2
  'answered_ack', // 3
  'answered', // 4: a person answers but presses nothing
  'machine', // 5
  'busy', // 6
  'no_answer', // 7
  'failed', // 8
  'rejected', // 9
];

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/** Does an override's `match` (exact, glob or `/regex/`) cover this number (digits, no `+`)? */
export function matches(match: string, number: string): boolean {
  const m = match.replace(/^\+/, '');
  if (m.length > 2 && m.startsWith('/') && m.endsWith('/')) {
    try {
      return new RegExp(m.slice(1, -1)).test(number);
    } catch {
      return false;
    }
  }
  return m.includes('*') || m.includes('?') ? globToRegExp(m).test(number) : m === number;
}

/** The first override matching the number, merged field by field with later matches. */
export function overrideFor(settings: SimSettings, number: string): Partial<NumberOverride> {
  const merged: Partial<NumberOverride> = {};
  for (const o of settings.overrides) {
    if (!matches(o.match, number)) continue;
    for (const [k, v] of Object.entries(o)) if (v !== undefined && !(k in merged)) (merged as Record<string, unknown>)[k] = v;
  }
  return merged;
}

/**
 * The outcome of the `attempt`-th call (0-based) to `number`: an override, else the last-digit
 * rule or the seeded probability table.
 */
export function chooseOutcome(settings: SimSettings, number: string, attempt: number): SimOutcome {
  const override = overrideFor(settings, number);
  if (override.outcome) return override.outcome;
  if (settings.outcomeMode === 'probability') {
    const entries = Object.entries(settings.probabilities).filter(([, w]) => (w ?? 0) > 0) as [SimOutcome, number][];
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    if (total > 0) {
      let u = uniform(settings.seed, 'outcome', number, attempt) * total;
      for (const [outcome, weight] of entries) {
        if (u < weight) return outcome;
        u -= weight;
      }
      return entries[entries.length - 1]![0];
    }
  }
  const last = Number(number.at(-1) ?? '0');
  return LAST_DIGIT_OUTCOMES[last] ?? 'answered_ack';
}
