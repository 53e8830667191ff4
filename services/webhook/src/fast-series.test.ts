import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from '@clarion/http';
import { fastSeries } from './fast-series.js';

const LABELS = { method: 'GET', route: '/webhooks/answer', status: '200' };
const OTHER = { method: 'POST', route: '/webhooks/event', status: '204' };
// Sums of these are exact in any order, so the texts compare byte for byte. On a bound, between
// bounds, below the first and above the last.
const VALUES = [2 ** -11, 0.25, 1, 5, 8, 5 / 1024, 2 ** -7, 0.03125, 0.125, 0.25, 2 ** -11];

function histogram() {
  const registry = new Registry();
  const h = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  // Lines sorted: a fast series appears where it was first scraped rather than first observed, and the
  // order of series means nothing to Prometheus.
  const text = async () => (await registry.getSingleMetricAsString('http_request_duration_seconds')).split('\n').sort().join('\n');
  return { h, text };
}

describe('fastSeries', () => {
  it('scrapes exactly as the same observe() calls would, mixed with them, across scrapes and a reset', async () => {
    const fast = histogram();
    const plain = histogram();
    const series = fastSeries(fast.h, LABELS);
    expect(await fast.text()).toBe(await plain.text());

    for (const value of VALUES) {
      series.observe(value);
      plain.h.observe(LABELS, value);
    }
    fast.h.observe(OTHER, 0.5);
    plain.h.observe(OTHER, 0.5);
    expect(await fast.text()).toBe(await plain.text());
    expect(await fast.text()).toContain('http_request_duration_seconds_count{method="GET",route="/webhooks/answer",status="200"} 11');

    // Observed the ordinary way on the same series (the full chain), then fast again: one series.
    fast.h.observe(LABELS, 0.0078125);
    plain.h.observe(LABELS, 0.0078125);
    for (const value of VALUES.slice(0, 4)) {
      series.observe(value);
      plain.h.observe(LABELS, value);
    }
    // Scraped twice: nothing is added twice.
    expect(await fast.text()).toBe(await plain.text());
    expect(await fast.text()).toBe(await plain.text());
    expect(await fast.text()).toContain('http_request_duration_seconds_count{method="GET",route="/webhooks/answer",status="200"} 16');

    fast.h.reset();
    plain.h.reset();
    series.observe(0.5);
    plain.h.observe(LABELS, 0.5);
    expect(await fast.text()).toBe(await plain.text());
    expect(await fast.text()).toContain('http_request_duration_seconds_sum{method="GET",route="/webhooks/answer",status="200"} 0.5');
  });

  it('keeps a collect hook the histogram already had', async () => {
    let collected = 0;
    const registry = new Registry();
    const h = new Histogram({ name: 'h', help: 'h', labelNames: ['route'], buckets: [1], registers: [registry], collect: () => void collected++ });
    fastSeries(h, { route: '/x' }).observe(2);
    const text = await registry.metrics();
    expect(collected).toBe(1);
    expect(text).toContain('h_bucket{le="1",route="/x"} 0');
    expect(text).toContain('h_bucket{le="+Inf",route="/x"} 1');
  });
});
