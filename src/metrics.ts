// The Prometheus side: prom-client collectors filled at scrape time from one shared dump.
import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { ScrapeOptions, ScrapeResult, Scrapes, SnapshotTaker } from './scrape';
import { registerListenMetrics } from './listen_metrics';
import { registerConnectionLifeMetrics } from './connection_life_metrics';
import { registerIdleMetrics } from './idle_metrics';
import { VERSION } from './version';

export interface MetricsOptions extends ScrapeOptions {
  /** Export opened/closed counters (the snapshots carry churn data). */
  churn?: boolean;
  /** Export the idle-time distribution with these bounds in seconds (the snapshots carry idle data). */
  idleBoundsSeconds?: number[];
}

export function createRegistry(source: SnapshotTaker, options: MetricsOptions): Registry {
  const registry = new Registry();
  const scrapes = new Scrapes(source, options);
  const scrape = () => scrapes.scrape();
  /** A collector that fills its metric from a successful scrape (and leaves it empty after a failed one). */
  const fromScrape = (fill: (result: Extract<ScrapeResult, { ok: true }>) => void) =>
    async function collect() {
      const result = await scrape();
      if (result.ok) fill(result);
    };

  const connections = new Gauge({
    name: 'sockmon_tcp_connections',
    help: 'TCP connections per watched peer, local port and state (0 for a while after a series empties).',
    labelNames: ['peer', 'local_port', 'state'],
    registers: [registry],
    async collect() {
      connections.reset(); // a failed dump leaves no connection series
      await fromScrape((r) => {
        for (const s of r.series) connections.set({ peer: s.peer, local_port: String(s.localPort), state: s.state }, s.value);
      })();
    },
  });
  const up = new Gauge({
    name: 'sockmon_up',
    help: 'Whether the last socket dump succeeded (1) or failed (0).',
    registers: [registry],
    async collect() {
      up.set((await scrape()).ok ? 1 : 0);
    },
  });
  const scanned = new Gauge({
    name: 'sockmon_sockets_scanned',
    help: 'Sockets the kernel returned for the watched ports, peers and states in the last dump.',
    registers: [registry],
    collect: fromScrape((r) => scanned.set(r.snapshot.scanned)),
  });
  const folded = new Gauge({
    name: 'sockmon_peers_folded',
    help: 'Distinct peers beyond --max-peers, counted together under peer="other" in the last dump.',
    registers: [registry],
    collect: fromScrape((r) => folded.set(r.foldedPeers)),
  });
  const dumpErrors = new Counter({
    name: 'sockmon_dump_errors_total',
    help: 'Socket dumps that failed.',
    registers: [registry],
    async collect() {
      await scrape(); // counts this scrape's dump, if it fails
      dumpErrors.reset();
      dumpErrors.inc(scrapes.dumpErrors);
    },
  });

  if (options.churn) {
    const counters = [
      ['opened', 'Watched connections opened since sockmon started: closed since start + live now - live at start.'],
      ['closed', "Watched connections closed since sockmon started, from the kernel's TCP close events."],
    ] as const;
    for (const [kind, help] of counters) {
      const counter = new Counter({
        name: `sockmon_tcp_connections_${kind}_total`,
        help,
        labelNames: ['peer', 'local_port'],
        registers: [registry],
        collect: fromScrape((r) => {
          counter.reset();
          for (const c of r.churn) counter.inc({ peer: c.peer, local_port: String(c.localPort) }, c[kind]);
        }),
      });
    }
    const lost = new Counter({
      name: 'sockmon_close_events_lost_total',
      help: "TCP close events the kernel dropped because sockmon's receive buffer was full (the socket's drop count): the churn counters undercount by this much.",
      registers: [registry],
      collect: fromScrape((r) => {
        lost.reset();
        lost.inc(r.snapshot.churn?.lostEvents ?? 0);
      }),
    });
    const churnUp = new Gauge({
      name: 'sockmon_churn_up',
      help: 'Whether the close watcher ran through the last scrape interval (0: it stopped and was restarted, or cannot start; opened and closed miss what closed meanwhile).',
      registers: [registry],
      collect: fromScrape((r) => churnUp.set(r.snapshot.churn?.up ? 1 : 0)),
    });
  }

  if (options.idleBoundsSeconds?.length) registerIdleMetrics(registry, options.idleBoundsSeconds, (fill) => fromScrape((r) => fill(r.idle, r.series)));

  registerListenMetrics(registry, (fill) => fromScrape((r) => fill(r.snapshot)));
  if (options.churn) registerConnectionLifeMetrics(registry, (fill) => fromScrape((r) => fill(r.closing)));

  new Gauge({
    name: 'sockmon_build_info',
    help: 'sockmon build information; always 1.',
    labelNames: ['version', 'nodejs'],
    registers: [registry],
  }).set({ version: VERSION, nodejs: process.version }, 1);
  // Registered after every sockmon collector: when it runs, the others have been filled from the same scrape.
  const duration = new Gauge({
    name: 'sockmon_scrape_duration_seconds',
    help: 'How long the last collection took: the socket dump, the series bookkeeping and filling every sockmon metric.',
    registers: [registry],
    collect: fromScrape((r) => duration.set((performance.now() - r.startedAt) / 1000)),
  });
  collectDefaultMetrics({ register: registry });
  // These gauges sum nodejs_active_{handles,requests,resources}{type} under a counter's `_total` suffix,
  // which `promtool check metrics` rightly flags; the per-type gauges stay.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  // The first dump sets the baseline of the opened counters: take it at start, not at the first scrape.
  if (options.churn) void scrape();
  return registry;
}
