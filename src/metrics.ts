// The Prometheus side: prom-client collectors filled at scrape time from one shared dump.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from './log';
import { ConnectionSeries, Series } from './series';
import type { Snapshot } from './snapshot';
import { VERSION } from './version';

export interface SnapshotTaker {
  take(): Promise<Snapshot>;
}

export interface MetricsOptions {
  maxPeers: number;
  retentionMs: number;
  log: Logger;
  now?: () => number;
}

type ScrapeResult = { ok: true; snapshot: Snapshot; series: Series[]; foldedPeers: number } | { ok: false };

export function createRegistry(source: SnapshotTaker, options: MetricsOptions): Registry {
  const registry = new Registry();
  const now = options.now ?? Date.now;
  const connectionSeries = new ConnectionSeries(options.maxPeers, options.retentionMs);

  // Every collector of a scrape (and every scrape that overlaps it) awaits the same dump; the series
  // bookkeeping runs once per dump.
  let lastDump: Promise<Snapshot> | undefined;
  let lastResult: Promise<ScrapeResult> | undefined;
  const scrape = (): Promise<ScrapeResult> => {
    const dump = source.take();
    if (dump !== lastDump || !lastResult) {
      lastDump = dump;
      lastResult = dump.then(
        (snapshot) => ({ ok: true as const, snapshot, ...connectionSeries.update(snapshot.connections, now()) }),
        (error: NodeJS.ErrnoException) => {
          dumpErrors.inc();
          options.log.error('socket dump failed', { err: error.message, code: error.code });
          return { ok: false as const };
        },
      );
    }
    return lastResult;
  };

  new Gauge({
    name: 'sockmon_tcp_connections',
    help: 'TCP connections per watched peer, local port and state (0 for a while after a series empties).',
    labelNames: ['peer', 'local_port', 'state'],
    registers: [registry],
    async collect() {
      const result = await scrape();
      this.reset();
      if (!result.ok) return;
      for (const s of result.series) this.set({ peer: s.peer, local_port: String(s.localPort), state: s.state }, s.value);
    },
  });
  new Gauge({
    name: 'sockmon_up',
    help: 'Whether the last socket dump succeeded (1) or failed (0).',
    registers: [registry],
    async collect() {
      this.set((await scrape()).ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sockmon_scrape_duration_seconds',
    help: 'How long the last socket dump took.',
    registers: [registry],
    async collect() {
      const result = await scrape();
      if (result.ok) this.set(result.snapshot.durationSeconds);
    },
  });
  new Gauge({
    name: 'sockmon_sockets_scanned',
    help: 'Sockets the kernel returned for the watched ports, peers and states in the last dump.',
    registers: [registry],
    async collect() {
      const result = await scrape();
      if (result.ok) this.set(result.snapshot.scanned);
    },
  });
  new Gauge({
    name: 'sockmon_peers_folded',
    help: 'Distinct peers beyond --max-peers, counted together under peer="other" in the last dump.',
    registers: [registry],
    async collect() {
      const result = await scrape();
      if (result.ok) this.set(result.foldedPeers);
    },
  });
  const dumpErrors = new Counter({
    name: 'sockmon_dump_errors_total',
    help: 'Socket dumps that failed.',
    registers: [registry],
    async collect() {
      await scrape(); // counts this scrape's dump, if it fails
    },
  });
  new Gauge({
    name: 'sockmon_build_info',
    help: 'sockmon build information; always 1.',
    labelNames: ['version', 'nodejs'],
    registers: [registry],
  }).set({ version: VERSION, nodejs: process.version }, 1);
  collectDefaultMetrics({ register: registry });
  // These gauges sum nodejs_active_{handles,requests,resources}{type} under a counter's `_total` suffix,
  // which `promtool check metrics` rightly flags; the per-type gauges stay.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  return registry;
}
