import { describe, expect, it } from 'vitest';
import { classifyAttempt } from './outcome.js';

const s = (status: string, extra: { detail?: string; digits?: string } = {}) => ({ status, ...extra });

/** Every permutation of a small list. */
function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('classifyAttempt', () => {
  it.each([
    [[s('started'), s('ringing'), s('answered'), s('completed')], 'answered'],
    [[s('started'), s('ringing'), s('answered'), s('input', { digits: '1' }), s('completed')], 'acknowledged'],
    [[s('started'), s('ringing'), s('answered'), s('input', { digits: '7' }), s('completed')], 'answered'],
    [[s('started'), s('ringing'), s('answered'), s('machine'), s('completed')], 'voicemail'],
    [[s('started'), s('ringing'), s('busy'), s('completed')], 'busy'],
    [[s('started'), s('ringing'), s('unanswered', { detail: 'timeout' }), s('completed')], 'no_answer'],
    [[s('started'), s('ringing'), s('timeout'), s('completed')], 'no_answer'],
    [[s('started'), s('failed', { detail: 'cannot_route' }), s('completed')], 'failed'],
    [[s('started'), s('failed', { detail: 'number_out_of_service' }), s('completed')], 'invalid_number'],
    [[s('started'), s('rejected', { detail: 'invalid_number' })], 'invalid_number'],
    [[s('started'), s('rejected', { detail: 'declined' })], 'rejected'],
    [[s('error')], 'failed'],
  ] as const)('%j → %s, final', (signals, expected) => {
    const view = classifyAttempt(signals);
    expect(view.outcome).toBe(expected);
    expect(view.final).toBe(true);
  });

  it('gives the same answer in every order and with duplicates (monotonic, idempotent)', () => {
    const signals = [s('started'), s('ringing'), s('answered'), s('input', { digits: '1' }), s('completed')];
    for (const order of permutations(signals)) {
      expect(classifyAttempt([...order, ...order.slice(0, 2)]).outcome).toBe('acknowledged');
    }
    const busy = [s('started'), s('busy'), s('completed')];
    for (const order of permutations(busy)) expect(classifyAttempt(order)).toMatchObject({ outcome: 'busy', final: true });
  });

  it('is not final before completed (or rejected), and keeps unknown statuses raw', () => {
    expect(classifyAttempt([s('started'), s('ringing'), s('answered')]).final).toBe(false);
    const view = classifyAttempt([s('started'), s('teleported'), s('completed')]);
    expect(view.unclassified).toEqual(['teleported']);
    expect(view.outcome).toBe('unknown');
  });

  it('uses the broadcast acknowledgement key', () => {
    expect(classifyAttempt([s('input', { digits: '1' })], '9').outcome).toBe('answered');
    expect(classifyAttempt([s('input', { digits: '9' })], '9').outcome).toBe('acknowledged');
  });
});
