import { describe, expect, it } from 'vitest';
import { msUntilWindowOpens } from './window.js';

const base = { days: [1, 2, 3, 4, 5, 6, 7], timezone: 'UTC', override: false };
// 2026-12-02 is a Wednesday.
const at = (iso: string) => Date.parse(iso);

describe('msUntilWindowOpens', () => {
  it('is 0 inside the window', () => {
    expect(msUntilWindowOpens({ ...base, start: '09:00', end: '17:00' }, at('2026-12-02T10:00:00Z'))).toBe(0);
  });
  it('waits until the start the same day', () => {
    expect(msUntilWindowOpens({ ...base, start: '09:00', end: '17:00' }, at('2026-12-02T08:30:00Z'))).toBe(30 * 60_000);
  });
  it('waits until the next day after the end', () => {
    expect(msUntilWindowOpens({ ...base, start: '09:00', end: '17:00' }, at('2026-12-02T18:00:00Z'))).toBe(15 * 3600_000);
  });
  it('skips days not allowed', () => {
    // Wednesday 18:00 -> Monday 09:00 when only Mondays are allowed.
    const ms = msUntilWindowOpens({ ...base, days: [1], start: '09:00', end: '17:00' }, at('2026-12-02T18:00:00Z'));
    expect(ms).toBe((4 * 24 + 15) * 3600_000);
  });
  it('uses the contact time zone when known', () => {
    // 10:00 UTC is 05:00 in New York (EST).
    const window = { ...base, start: '09:00', end: '17:00' };
    expect(msUntilWindowOpens(window, at('2026-12-02T10:00:00Z'), 'America/New_York')).toBe(4 * 3600_000);
    expect(msUntilWindowOpens(window, at('2026-12-02T10:00:00Z'), 'Not/AZone')).toBe(0);
  });
  it('handles a window across midnight', () => {
    const window = { ...base, start: '22:00', end: '06:00' };
    expect(msUntilWindowOpens(window, at('2026-12-02T23:00:00Z'))).toBe(0);
    expect(msUntilWindowOpens(window, at('2026-12-02T03:00:00Z'))).toBe(0);
    expect(msUntilWindowOpens(window, at('2026-12-02T12:00:00Z'))).toBe(10 * 3600_000);
  });
});
