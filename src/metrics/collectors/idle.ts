// The idle time of live connections (--idle): ESTABLISHED watched connections by time since data last
// arrived, per (peer label, local port), as a gauge histogram (src/histogram_family.ts says why that type).
// A (label, port) whose connections are exported keeps its idle series, at 0, while it has none
// ESTABLISHED: a pool that drained shows as 0, not as a gap.
import { registerHistogramFamily } from '../histogram_family';
import type { Collector } from './collector';

/** The collector for these bucket bounds, in seconds. */
export const idleCollector =
  (bounds: readonly number[]): Collector =>
  ({ registry, fromScrape }) =>
    registerHistogramFamily(registry, {
      name: 'sockmon_tcp_connection_idle_seconds',
      help: 'ESTABLISHED watched connections now, by time since data last arrived (tcpi_last_data_recv): a gauge histogram, read its buckets as they are (histogram_quantile without rate()); _count is the ESTABLISHED connections.',
      bounds,
      gauge: true,
      async collect() {
        const result: { labels: Record<string, string>; buckets: number[] }[] = [];
        await fromScrape(({ idle, series }) => {
          const key = (peer: string, localPort: number) => `${peer}|${localPort}`;
          const seen = new Set<string>();
          for (const g of idle) {
            seen.add(key(g.peer, g.localPort));
            // IdleGroup holds cumulative counts; the family takes them per bucket.
            result.push({ labels: { peer: g.peer, local_port: String(g.localPort) }, buckets: g.cumulative.map((n, i) => n - (i ? g.cumulative[i - 1] : 0)) });
          }
          for (const s of series) {
            if (seen.has(key(s.peer, s.localPort))) continue;
            seen.add(key(s.peer, s.localPort));
            result.push({ labels: { peer: s.peer, local_port: String(s.localPort) }, buckets: new Array<number>(bounds.length + 1).fill(0) });
          }
        })();
        return result;
      },
    });
