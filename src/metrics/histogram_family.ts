// A Prometheus histogram family (`_bucket` cumulative with `le`, `_sum`, `_count`) filled at scrape time from
// bucket counts sockmon already has, rather than from observe() calls: prom-client's Histogram can only be
// fed one observation at a time, and sockmon's observations are counted in C++.
import { Metric, Registry, RegistryContentType } from 'prom-client';

export interface HistogramSeries {
  labels: Record<string, string>;
  /** Per bucket, not cumulative: bucket i counts values in (bounds[i-1], bounds[i]], the last those above every bound. */
  buckets: ArrayLike<number>;
  /** Absent: no `_sum` line (the text format allows it; the native idle counts have no sum). */
  sum?: number;
}

/**
 * Registers a histogram family with these bounds; `collect` gives its series at each scrape. A `gauge`
 * histogram (a distribution now, not of observations since start: its buckets can go down) is an OpenMetrics
 * `gaugehistogram` (`_gcount`, `_gsum`) when the registry speaks OpenMetrics; the Prometheus text format has
 * no such type, and there it is a `histogram`: the only type that may carry `le` (promtool checks that), and
 * what histogram_quantile() reads, applied to the buckets as they are, without rate().
 */
export function registerHistogramFamily(
  registry: Registry<RegistryContentType>,
  options: { name: string; help: string; bounds: readonly number[]; gauge?: boolean; collect: () => Promise<HistogramSeries[]> },
): void {
  const { name, help, bounds, collect } = options;
  // Label objects are kept from one scrape to the next: prom-client formats a sharedLabels object once
  // and caches the text by identity, and a histogram repeats its labels on every line (peers x buckets:
  // tens of thousands of lines at the peer cap).
  const leLabels = [...bounds.map(String), '+Inf'].map((le) => ({ le }));
  const noLabels = {};
  let sharedLabels = new Map<string, Record<string, string>>();
  const family = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const gaugeHistogram = options.gauge && registry.contentType === Registry.OPENMETRICS_CONTENT_TYPE;
      const type = gaugeHistogram ? 'gaugehistogram' : 'histogram';
      const [count, sum] = gaugeHistogram ? ['_gcount', '_gsum'] : ['_count', '_sum'];
      // The series' labels go in sharedLabels, one object for all its lines: prom-client formats them once.
      const values: { labels: Record<string, string>; sharedLabels?: Record<string, string>; value: number; metricName: string }[] = [];
      const [bucketName, sumName, countName] = [`${name}_bucket`, `${name}${sum}`, `${name}${count}`];
      const kept = new Map<string, Record<string, string>>();
      for (const series of await collect()) {
        const key = Object.entries(series.labels).join('\n');
        const labels = sharedLabels.get(key) ?? series.labels;
        kept.set(key, labels);
        let cumulative = 0;
        for (let i = 0; i < series.buckets.length; i++) {
          cumulative += series.buckets[i];
          values.push({ labels: leLabels[i], sharedLabels: labels, value: cumulative, metricName: bucketName });
        }
        if (series.sum !== undefined) values.push({ labels: noLabels, sharedLabels: labels, value: series.sum, metricName: sumName });
        values.push({ labels: noLabels, sharedLabels: labels, value: cumulative, metricName: countName });
      }
      sharedLabels = kept; // series gone from this scrape are forgotten
      family.type = type;
      return { name, help, type, values, aggregator: 'sum' };
    },
    reset() {},
  };
  registry.registerMetric(family as unknown as Metric);
}
