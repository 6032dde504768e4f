// The idle time of live connections (--idle): ESTABLISHED watched connections by time since data last
// arrived, per (peer label, local port), as a gauge histogram (live_histogram.ts).
import type { Collector } from './collector';
import { registerLiveHistogram } from './live_histogram';

/** The collector for these bucket bounds, in seconds. */
export const idleCollector =
  (bounds: readonly number[]): Collector =>
  (context) =>
    registerLiveHistogram(context, {
      name: 'sockmon_tcp_connection_idle_seconds',
      help: 'ESTABLISHED watched connections now, by time since data last arrived (tcpi_last_data_recv): a gauge histogram, read its buckets as they are (histogram_quantile without rate()); _count is the ESTABLISHED connections.',
      bounds,
      withSum: false,
      // IdleGroup holds cumulative counts; the family takes them per bucket.
      groups: ({ idle }) => idle.map((g) => ({ peer: g.peer, localPort: g.localPort, buckets: g.cumulative.map((n, i) => n - (i ? g.cumulative[i - 1] : 0)) })),
    });
