// A gauge histogram of the live connections now, per (peer label, local port) (src/histogram_family.ts says
// why that type). A (label, port) whose connections are exported keeps its series, at 0, while it has none
// ESTABLISHED: a pool that drained shows as 0, not as a gap. Shared by the idle and live-reuse collectors.
import { HistogramSeries, registerHistogramFamily } from '../histogram_family';
import type { CollectorContext, SuccessfulScrape } from './collector';

export interface LiveGroup {
  peer: string;
  localPort: number;
  /** Per bucket, not cumulative. */
  buckets: ArrayLike<number>;
  sum?: number;
}

export function registerLiveHistogram(
  { registry, fromScrape }: CollectorContext,
  options: {
    name: string;
    help: string;
    bounds: readonly number[];
    /** Whether the groups carry a sum (a `_sum` line, 0 on the kept zero series). */
    withSum: boolean;
    groups: (scrape: SuccessfulScrape) => readonly LiveGroup[];
  },
): void {
  const { bounds } = options;
  registerHistogramFamily(registry, {
    name: options.name,
    help: options.help,
    bounds,
    gauge: true,
    async collect() {
      const result: HistogramSeries[] = [];
      await fromScrape((scrape) => {
        const key = (peer: string, localPort: number) => `${peer}|${localPort}`;
        const seen = new Set<string>();
        for (const g of options.groups(scrape)) {
          seen.add(key(g.peer, g.localPort));
          result.push({ labels: { peer: g.peer, local_port: String(g.localPort) }, buckets: g.buckets, sum: g.sum });
        }
        for (const s of scrape.series) {
          if (seen.has(key(s.peer, s.localPort))) continue;
          seen.add(key(s.peer, s.localPort));
          const zeros = new Array<number>(bounds.length + 1).fill(0);
          result.push({ labels: { peer: s.peer, local_port: String(s.localPort) }, buckets: zeros, sum: options.withSum ? 0 : undefined });
        }
      })();
      return result;
    },
  });
}
