// sockmon's own state: whether the dump worked, how long the collection took, the build, and (unless
// --web.disable-exporter-metrics) prom-client's process_* and nodejs_* metrics.
import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge } from 'prom-client';
import { VERSION } from '../../common/version';
import type { Collector } from './collector';

/** Register it after every other collector: its duration is filled once they have been filled from the same scrape. */
export const exporterCollector =
  (options: { processMetrics: boolean }): Collector =>
  ({ registry, scrapes, fromScrape }) => {
    const up = new Gauge({
      name: 'sockmon_up',
      help: 'Whether the last socket dump succeeded (1) or failed (0).',
      registers: [registry],
      async collect() {
        up.set((await scrapes.scrape()).ok ? 1 : 0);
      },
    });
    const dumpErrors = new Counter({
      name: 'sockmon_dump_errors_total',
      help: 'Socket dumps that failed.',
      registers: [registry],
      async collect() {
        await scrapes.scrape(); // counts this scrape's dump, if it fails
        dumpErrors.reset();
        dumpErrors.inc(scrapes.dumpErrors);
      },
    });
    new Gauge({
      name: 'sockmon_build_info',
      help: 'sockmon build information; always 1.',
      labelNames: ['version', 'nodejs'],
      registers: [registry],
    }).set({ version: VERSION, nodejs: process.version }, 1);
    const duration = new Gauge({
      name: 'sockmon_scrape_duration_seconds',
      help: 'How long the last collection took: the socket dump, the series bookkeeping and filling every sockmon metric.',
      registers: [registry],
      collect: fromScrape((r) => duration.set((performance.now() - r.startedAt) / 1000)),
    });
    if (!options.processMetrics) return;
    collectDefaultMetrics({ register: registry });
    // These gauges sum nodejs_active_{handles,requests,resources}{type} under a counter's `_total` suffix,
    // which `promtool check metrics` rightly flags; the per-type gauges stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(name);
    }
  };
