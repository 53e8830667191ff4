import { describe, expect, it } from 'vitest';
import { csvCell } from './csv.js';
import { summarize, viewAttempt, type BroadcastDoc } from './records.js';

const now = new Date('2026-03-02T10:10:00.000Z');
const base: BroadcastDoc = { _id: 'b1', audience: 10, enqueuedAt: '2026-03-02T10:00:00.000Z', firstSeenAt: '2026-03-02T10:00:00.000Z' };

describe('summarize', () => {
  it('counts unseen contacts as queued so counts add up to the audience', () => {
    const s = summarize(base, { calling: 2, answered: 3 }, 5, now);
    expect(s.counts).toEqual({ calling: 2, answered: 3, queued: 5 });
    expect(Object.values(s.counts).reduce((a, b) => a + b, 0)).toBe(10);
    expect(s).toMatchObject({ pending: 7, final: 3, done: false, status: 'running' });
  });

  it('follows the latest pause/halt/resume; at equal times the stop wins; cancel is terminal', () => {
    const t1 = '2026-03-02T10:01:00.000Z';
    const t2 = '2026-03-02T10:02:00.000Z';
    expect(summarize({ ...base, lifecycle: [`${t1}|paused`, `${t2}|resumed`] }, {}, 0, now).status).toBe('running');
    expect(summarize({ ...base, lifecycle: [`${t2}|paused`, `${t1}|resumed`] }, {}, 0, now).status).toBe('paused');
    expect(summarize({ ...base, lifecycle: [`${t1}|resumed`, `${t1}|paused`] }, {}, 0, now).status).toBe('paused');
    expect(summarize({ ...base, lifecycle: [`${t1}|cancelled`, `${t2}|resumed`] }, { cancelled: 10 }, 0, now).status).toBe('cancelled');
    expect(summarize({ ...base, lifecycle: [`${t1}|halted`] }, {}, 0, now).status).toBe('halted');
  });

  it('a halted broadcast runs again once resumed, and one halted after its last contact is still completed', () => {
    const t1 = '2026-03-02T10:01:00.000Z';
    const t2 = '2026-03-02T10:02:00.000Z';
    const halted = { ...base, lifecycle: [`${t1}|halted`], reason: 'Voice API refused the account (401)' };
    expect(summarize(halted, { answered: 3 }, 3, now)).toMatchObject({ status: 'halted', reason: 'Voice API refused the account (401)' });
    const resumed = summarize({ ...halted, lifecycle: [`${t1}|halted`, `${t2}|resumed`] }, { answered: 3 }, 3, now);
    expect(resumed).toMatchObject({ status: 'running', reason: null });
    expect(summarize({ ...halted, lifecycle: [`${t1}|resumed`, `${t1}|halted`] }, {}, 0, now).status).toBe('halted');
    expect(summarize({ ...halted, lastFinalAt: t1 }, { answered: 10 }, 10, now).status).toBe('completed');
  });

  it('a cancel after the last contact was final leaves the broadcast completed; one that ended the rest is cancelled', () => {
    const t1 = '2026-03-02T10:01:00.000Z';
    const t2 = '2026-03-02T10:02:00.000Z';
    expect(summarize({ ...base, lastFinalAt: t1, lifecycle: [`${t2}|cancelled`] }, { answered: 10 }, 10, now).status).toBe('completed');
    expect(summarize({ ...base, lastFinalAt: t2, lifecycle: [`${t1}|cancelled`] }, { answered: 4, cancelled: 6 }, 4, now).status).toBe('cancelled');
    expect(summarize({ ...base, lifecycle: [`${t1}|cancelled`] }, { answered: 4 }, 4, now).status).toBe('cancelled');
  });

  it('is created before anything is enqueued or called, completed when every contact is final', () => {
    expect(summarize({ _id: 'b2' }, {}, 0, now)).toMatchObject({ status: 'created', audience: null, pending: 0, done: false });
    const done = summarize({ ...base, lastFinalAt: '2026-03-02T10:05:00.000Z' }, { acknowledged: 4, busy: 6 }, 10, now);
    expect(done).toMatchObject({ status: 'completed', done: true, etaSeconds: 0, timings: { completedAt: '2026-03-02T10:05:00.000Z' } });
    expect(done.rates).toMatchObject({ answerRate: 0.4, confirmationRate: 1 });
  });

  it('estimates the time left from the call rate', () => {
    const s = summarize({ ...base, firstCallAt: '2026-03-02T10:00:00.000Z', lastCallAt: '2026-03-02T10:05:00.000Z' }, { answered: 5 }, 5, now);
    expect(s.rates.callsPerMinute).toBe(0.5);
    expect(s.etaSeconds).toBe(600);
  });
});

describe('summarize with retries waiting and without acknowledgement', () => {
  it('puts the ETA no earlier than the last scheduled retry', () => {
    const doc = { ...base, firstCallAt: '2026-03-02T10:00:00.000Z', lastCallAt: '2026-03-02T10:05:00.000Z' };
    const window = { nextAt: '2026-03-02T10:12:00.000Z', lastAt: '2026-03-02T10:15:00.000Z' };
    const s = summarize(doc, { answered: 8, waiting_retry: 2 }, 100, now, window);
    expect(s.retries).toEqual({ waiting: 2, ...window });
    expect(s.etaSeconds).toBe(300);
    expect(s.eta).toBe('2026-03-02T10:15:00.000Z');
    // No contact waiting: the window is ignored.
    expect(summarize(doc, { answered: 8, calling: 2 }, 100, now, window).retries).toEqual({ waiting: 0, nextAt: null, lastAt: null });
  });

  it('has no confirmation rate when nobody is asked to confirm', () => {
    expect(summarize({ ...base, acknowledgement: false }, { answered: 10 }, 10, now).rates.confirmationRate).toBeNull();
    expect(summarize({ ...base, acknowledgement: true }, { answered: 10 }, 10, now).rates.confirmationRate).toBe(0);
  });
});

describe('viewAttempt', () => {
  it('classifies from the set of signals and keeps unknown statuses raw', () => {
    const v = viewAttempt({
      _id: 'b:c:1',
      broadcastId: 'b',
      contactId: 'c',
      attempt: 1,
      statuses: ['completed', 'brand_new', 'answered'],
      signals: ['completed||', 'brand_new||', 'answered||'],
    });
    expect(v).toMatchObject({ outcome: 'answered', final: true, unclassified: ['brand_new'], statuses: ['answered', 'brand_new', 'completed'] });
  });
  it("falls back to the dialer's outcome when the provider never reported", () => {
    expect(viewAttempt({ _id: 'x', broadcastId: 'b', contactId: 'c', attempt: 1, dialerOutcome: 'failed', reasons: ['http 400'] })).toMatchObject({ outcome: 'failed', reason: 'http 400' });
  });
});

describe('csvCell', () => {
  it('quotes, and defuses formulas but not phone numbers', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell('+12025550100')).toBe('+12025550100');
    expect(csvCell(null)).toBe('');
    expect(csvCell(['a', 'b'])).toBe('a b');
  });
});
