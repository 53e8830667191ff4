import type { Histogram } from '@clarion/http';

/** What prom-client 15 keeps per labelled series of a histogram (internal: see fastSeries). */
type SeriesRecord = { labels: Record<string, string | number>; bucketValues: Record<string, number>; sum: number; count: number };
type HistogramInternals = {
  upperBounds: readonly number[];
  hashMap: Record<string, SeriesRecord>;
  collect?: (this: unknown) => unknown;
};

/** One labelled series of a histogram, observed without a label-set lookup. */
export interface FastSeries {
  observe(seconds: number): void;
}

/**
 * One series of `histogram`, counted on the hot path in plain numbers and added to the histogram
 * when the histogram is read (a scrape): prom-client's observe() builds and hashes the label set and
 * looks the bucket up by its bound as a string on every call, which was the costliest step left of a
 * fast-path answer. Adding counts in bulk needs prom-client's own per-series record (`hashMap`, with
 * per-bucket counts keyed by upper bound, `sum` and `count`), internal to prom-client 15 (the version
 * is pinned); fast-series.test.ts compares the scraped text with plain observe() calls, so a change
 * there fails it. Adding to the record costs a few numbers per scrape, however many requests there were.
 */
export function fastSeries(histogram: Histogram<string>, labels: Record<string, string>): FastSeries {
  const internals = histogram as unknown as HistogramInternals;
  const bounds = internals.upperBounds;
  if (!Array.isArray(bounds) || typeof internals.hashMap !== 'object') throw new Error('fastSeries: not a prom-client 15 histogram');
  // Per bucket (not cumulative), as prom-client counts; above the last bound only `count` grows.
  const counts = new Float64Array(bounds.length);
  let sum = 0;
  let count = 0;

  const record = (): SeriesRecord => {
    const same = (r: SeriesRecord) => Object.keys(labels).every((name) => String(r.labels[name]) === labels[name]);
    const found = Object.values(internals.hashMap).find(same);
    if (found) return found;
    histogram.zero(labels);
    const made = Object.values(internals.hashMap).find(same);
    if (!made) throw new Error('fastSeries: prom-client did not create the series');
    return made;
  };

  const flush = () => {
    if (count === 0) return;
    const target = record();
    for (let i = 0; i < bounds.length; i++) target.bucketValues[String(bounds[i])] = (target.bucketValues[String(bounds[i])] ?? 0) + (counts[i] ?? 0);
    target.sum += sum;
    target.count += count;
    counts.fill(0);
    sum = 0;
    count = 0;
  };

  const previous = internals.collect;
  internals.collect = function collect(this: unknown) {
    flush();
    return previous?.call(this);
  };

  return {
    observe(seconds) {
      let i = 0;
      while (i < bounds.length && seconds > (bounds[i] as number)) i++;
      if (i < bounds.length) counts[i] = (counts[i] ?? 0) + 1;
      sum += seconds;
      count++;
    },
  };
}
