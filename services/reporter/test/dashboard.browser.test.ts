import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@clarion/testkit';
import { localTime } from '../src/dashboard.js';
import type { BroadcastSummary } from '../src/records.js';
import { recordedBroadcast, shuffle, startHarness, TOKEN, type Harness } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-output');

let h: Harness;
let browser: Browser;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  h = await startHarness();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

// Without a Chromium binary the browser test cannot run; the lead's CI installs /usr/bin/chromium.
describe.skipIf(!existsSync(CHROMIUM))('dashboard in a browser', () => {
  it('shows live progress while events arrive and ends with the API counts', async () => {
    const bid = 'dash-1';
    const events = recordedBroadcast(bid);
    const enqueued = events.filter((e) => 'kind' in e && e.kind === 'broadcast');
    const rest = shuffle(events.filter((e) => !('kind' in e) || e.kind !== 'broadcast'), 3);
    for (const e of enqueued) await h.publish(e);
    await waitFor(async () => (await h.get(`/v1/broadcasts/${bid}`)).status === 200);

    // A zone other than UTC, so a UTC time shown unconverted (or without its zone) is caught.
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, timezoneId: 'America/New_York' });
    await page.goto(`${h.base}/#token=${TOKEN}&b=${bid}`);
    await page.getByTestId('audience').filter({ hasText: '7' }).waitFor();
    const before = Number(await page.getByTestId('final').textContent());
    expect(before).toBeLessThan(7);

    // Feed the rest in two halves, watching the page move in between.
    const half = Math.floor(rest.length / 2);
    for (const e of rest.slice(0, half)) await h.publish(e);
    const mid = await h.get<BroadcastSummary>(`/v1/broadcasts/${bid}`);
    await page.waitForFunction(`Number(document.querySelector('[data-testid=final]')?.textContent) >= ${mid.body.final}`);
    for (const e of rest.slice(half)) await h.publish(e);

    await page.waitForFunction(`document.body.dataset.final === 'true'`, undefined, { timeout: 15_000 });
    const api = (await h.get<BroadcastSummary>(`/v1/broadcasts/${bid}`)).body;
    expect(api.done).toBe(true);
    expect(await page.getByTestId('status').textContent()).toBe(api.status);
    expect(Number(await page.getByTestId('final').textContent())).toBe(api.final);
    const shown: unknown = await page.evaluate(
      `Object.fromEntries([...document.querySelectorAll('[data-testid=counts] [data-state]')].map((s) => [s.dataset.state, Number(s.querySelector('.n').textContent)]))`,
    );
    expect(shown).toEqual(api.counts);
    // Times are the browser's local time with the zone named.
    expect(await page.getByTestId('started').textContent()).toBe(localTime(api.timings.firstCallAt, 'America/New_York'));
    expect(localTime(api.timings.firstCallAt, 'America/New_York')).toBe('2026-03-02 05:00:02 GMT-5');
    // The "not confirmed" table lists everyone but the one who pressed 1.
    await page.locator('#pending-body tr').nth(5).waitFor();
    expect(await page.locator('#pending-body tr').count()).toBe(6);

    // The chart of calls and outcomes over time draws its three lines.
    await page.locator('#chart polyline').nth(2).waitFor();

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'dashboard.png'), fullPage: true });

    // The list view shows the broadcast too.
    await page.goto(`${h.base}/#`);
    const row = page.locator('#list-body tr', { hasText: `Flood warning ${bid}` });
    await row.waitFor();
    expect(await row.locator('td').nth(3).textContent()).toBe('2026-03-02 05:00:00 GMT-5');
    await page.close();
  });

  it('asks for the token when none is stored', async () => {
    const page = await browser.newPage();
    await page.goto(`${h.base}/`);
    await page.locator('#token-input').waitFor();
    await page.fill('#token-input', TOKEN);
    await page.click('#login-form button');
    await page.locator('#list').waitFor();
    await page.close();
  });
});
