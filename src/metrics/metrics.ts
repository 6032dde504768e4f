// The Prometheus side: the collectors of src/collectors/, one per concern, assembled on one registry and
// filled at scrape time from one shared dump (src/scrape.ts).
import { Registry } from 'prom-client';
import { churnCollector } from './collectors/churn';
import type { Collector, CollectorContext } from './collectors/collector';
import { connectionLifeCollector } from './collectors/connection_life';
import { connectionsCollector } from './collectors/connections';
import { exporterCollector } from './collectors/exporter';
import { idleCollector } from './collectors/idle';
import { listenCollector } from './collectors/listen';
import { liveReuseCollector } from './collectors/live_reuse';
import { ScrapeOptions, Scrapes, SnapshotTaker } from './scrape';

export interface MetricsOptions extends ScrapeOptions {
  /** Export opened/closed counters (the snapshots carry churn data). */
  churn?: boolean;
  /** Export the idle-time distribution with these bounds in seconds (the snapshots carry idle data). */
  idleBoundsSeconds?: number[];
  /** Export live reuse: ESTABLISHED connections by data segments so far (the snapshots carry liveSegments). */
  liveReuse?: boolean;
  /** Export prom-client's process_* and nodejs_* metrics (off: --web.disable-exporter-metrics). */
  exporterMetrics?: boolean;
}

export function createRegistry(source: SnapshotTaker, options: MetricsOptions): Registry {
  const registry = new Registry();
  const scrapes = new Scrapes(source, options);
  const context: CollectorContext = {
    registry,
    scrapes,
    fromScrape: (fill) =>
      async function collect() {
        const result = await scrapes.scrape();
        if (result.ok) fill(result);
      },
  };
  const collectors: Collector[] = [
    connectionsCollector,
    ...(options.churn ? [churnCollector, connectionLifeCollector] : []),
    ...(options.idleBoundsSeconds?.length ? [idleCollector(options.idleBoundsSeconds)] : []),
    ...(options.liveReuse ? [liveReuseCollector] : []),
    listenCollector,
    // Last: its scrape duration covers filling every other collector's metrics.
    exporterCollector({ processMetrics: options.exporterMetrics ?? true }),
  ];
  for (const register of collectors) register(context);
  return registry;
}
