import { describe, expect, it } from 'vitest';
import { dashboardHtml, localTime } from './dashboard.js';

describe('dashboard times', () => {
  it('shows an API time (UTC) as local date and time with the zone named', () => {
    const at = '2026-07-03T15:24:25.000Z';
    expect(localTime(at, 'UTC')).toBe('2026-07-03 15:24:25 UTC');
    expect(localTime(at, 'Europe/London')).toBe('2026-07-03 16:24:25 BST');
    expect(localTime(at, 'America/New_York')).toBe('2026-07-03 11:24:25 GMT-4');
    expect(localTime(null)).toBe('');
    expect(localTime('not a time')).toBe('not a time');
  });

  it('is the function the page runs for every time it shows', () => {
    expect(dashboardHtml).toContain(`const localTime = ${localTime.toString()};`);
    expect(dashboardHtml).toContain('localTime(b.timings.createdAt)');
    expect(dashboardHtml).toContain('Created (local time)');
    // No time is cut out of an ISO string and shown without its zone.
    expect(dashboardHtml).not.toMatch(/replace\('T', ' '\)/);
  });
});
