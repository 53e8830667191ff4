import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { waitFor } from '@clarion/testkit';
import type { NatsConnection } from '@clarion/nats';
import { startStack, type Stack } from '../src/stack.js';
import { connect, requestBroadcast, restClient } from '../src/client.js';
import { fictionalNumbers } from '../src/fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-output');
const CONTACTS = 240;

interface Summary {
  status: string;
  audience: number;
  final: number;
  done: boolean;
  counts: Record<string, number>;
}

// Without a Chromium binary the browser test cannot run (the machine image provides /usr/bin/chromium).
describe.skipIf(!existsSync(CHROMIUM))('the dashboard during a real broadcast', () => {
  let stack: Stack;
  let nc: NatsConnection;
  let stateDir: string;
  let browser: Browser;

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'clarion-dashboard-'));
    stack = await startStack({ stateDir, accountCps: 30, timeScale: 0.01, logLevel: 'warn', seed: 'dashboard' });
    nc = await connect(stack.natsUrl, 'dashboard-test');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await nc?.close();
    await stack?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('shows progress moving and ends with the API counts (phone and desktop widths)', async () => {
    const reporter = restClient(stack.url('reporter'), stack.secrets.apiToken);
    const reply = await requestBroadcast(nc, {
      name: 'Dashboard flood warning',
      idempotencyKey: 'dashboard-1',
      message: { text: 'Flood warning for your street. Press 1 to confirm.' },
      audience: { numbers: fictionalNumbers(CONTACTS) },
      acknowledgement: {},
      retry: { maxAttempts: 2, delaySeconds: 0.5, on: ['busy', 'no_answer'] },
      pacing: { callsPerSecond: 30 },
    });
    if (!reply.ok) throw new Error(reply.error.message);
    const bid = reply.broadcastId;
    await waitFor(async () => (await reporter.get<Summary>(`/v1/broadcasts/${bid}`).catch(() => undefined)) !== undefined, {
      timeoutMs: 30_000,
      message: 'reporter knows the broadcast',
    });

    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(`${stack.url('reporter')}/#token=${stack.secrets.apiToken}&b=${bid}`);
    await phone.getByTestId('audience').filter({ hasText: String(CONTACTS) }).waitFor({ timeout: 30_000 });
    const readFinal = async () => Number(await phone.getByTestId('final').textContent());

    // Progress moves while the broadcast runs: the page shows several different final counts below the audience.
    const seen = new Set<number>();
    await waitFor(
      async () => {
        const n = await readFinal();
        if (n < CONTACTS) seen.add(n);
        return seen.size >= 3 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, message: 'the page showed the final count moving' },
    );
    const live = await phone.getByTestId('status').textContent();
    expect(live).toMatch(/running|paused/);
    if (live === 'running') expect(await phone.locator('[data-action=pause]').isDisabled()).toBe(false);
    mkdirSync(OUTPUT, { recursive: true });
    await phone.screenshot({ path: join(OUTPUT, 'dashboard-live-390.png'), fullPage: true });

    await phone.waitForFunction(`document.body.dataset.final === 'true'`, undefined, { timeout: 150_000 });
    const api = await reporter.get<Summary>(`/v1/broadcasts/${bid}`);
    expect(api).toMatchObject({ done: true, status: 'completed', final: CONTACTS, audience: CONTACTS });
    expect(await phone.getByTestId('status').textContent()).toBe(api.status);
    expect(await readFinal()).toBe(api.final);
    const shown: unknown = await phone.evaluate(
      `Object.fromEntries([...document.querySelectorAll('[data-testid=counts] [data-state]')].map((s) => [s.dataset.state, Number(s.querySelector('.n').textContent)]))`,
    );
    expect(shown).toEqual(api.counts);
    // Readable on a phone: nothing wider than the screen.
    const overflow = await phone.evaluate(`document.documentElement.scrollWidth - document.documentElement.clientWidth`);
    expect(overflow).toBeLessThanOrEqual(0);
    // Every card's content fits the phone's width (no table columns hidden behind a sideways scroll).
    const cardOverflow = await phone.evaluate(`Math.max(...[...document.querySelectorAll('.card')].filter((c) => c.offsetParent).map((c) => c.scrollWidth - c.clientWidth))`);
    expect(cardOverflow).toBeLessThanOrEqual(0);
    // A finished broadcast offers no pause / resume / cancel.
    for (const action of ['pause', 'resume', 'cancel']) expect(await phone.locator(`[data-action=${action}]`).isDisabled()).toBe(true);
    await phone.locator('#chart polyline').nth(2).waitFor();
    await phone.screenshot({ path: join(OUTPUT, 'dashboard-final-390.png'), fullPage: true });
    await phone.close();

    const desktop = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await desktop.goto(`${stack.url('reporter')}/#token=${stack.secrets.apiToken}&b=${bid}`);
    await desktop.waitForFunction(`document.body.dataset.final === 'true'`, undefined, { timeout: 30_000 });
    await desktop.locator('#chart polyline').nth(2).waitFor();
    await desktop.screenshot({ path: join(OUTPUT, 'dashboard-final-1280.png'), fullPage: true });
    await desktop.close();
  });
});
