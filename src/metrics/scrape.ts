// One scrape's data: a dump, turned into bounded series (peer labels, retained zeros, churn counters, idle
// buckets). Every collector of a scrape, and every scrape that overlaps it, awaits the same dump, and the
// bookkeeping runs once per dump.
import { performance } from 'node:perf_hooks';
import { ChurnTotals, ConnectionChurn } from './churn';
import { ClosingTotals, ClosingTotalsByLabel } from './closing_totals';
import type { Logger } from '../common/log';
import { ConnectionSeries, OTHER_PEER, PeerLabels, SeriesUpdate } from './series';
import type { IdleGroup, LiveSegmentsGroup, Snapshot } from '../kernel/snapshot';

export interface SnapshotTaker {
  take(): Promise<Snapshot>;
}

/** The all-zero peer under which the close watcher counts closes past its bound: no TCP peer has it. */
const OVERFLOW_PEER = '::';

export type ScrapeResult =
  | ({
      ok: true;
      snapshot: Snapshot;
      churn: ChurnTotals[];
      /** Per (label, local port): what the connections closed since start did over their life, and how many ended in TIME-WAIT here. */
      closing: ClosingTotals[];
      idle: IdleGroup[];
      /** Per (label, local port): ESTABLISHED connections by data segments received so far. */
      liveSegments: LiveSegmentsGroup[];
      /** performance.now() when the scrape began: collectors report how long the whole collection took. */
      startedAt: number;
    } & SeriesUpdate)
  | { ok: false; startedAt: number };

export interface ScrapeOptions {
  maxPeers: number;
  retentionMs: number;
  log: Logger;
  now?: () => number;
}

/** Sums groups per (label, local port), `add` adding one group into another of the same key. */
function foldByLabel<G extends { peer: string; localPort: number }>(groups: readonly G[], label: (peer: string) => string, add: (into: G, group: G) => G): G[] {
  const folded = new Map<string, G>();
  for (const group of groups) {
    const peer = label(group.peer);
    const key = `${peer}|${group.localPort}`;
    const into = folded.get(key);
    folded.set(key, into ? add(into, group) : { ...group, peer });
  }
  return [...folded.values()];
}
const addIdle = (into: IdleGroup, group: IdleGroup): IdleGroup => ({ ...into, cumulative: into.cumulative.map((n, i) => n + group.cumulative[i]) });
const addLiveSegments = (into: LiveSegmentsGroup, group: LiveSegmentsGroup): LiveSegmentsGroup => ({
  ...into,
  buckets: into.buckets.map((n, i) => n + group.buckets[i]),
  sum: into.sum + group.sum,
});

/** Every peer of a snapshot, weighted by its connections (the busiest get labels first). */
function peerWeights(snapshot: Snapshot): Map<string, number> {
  const weights = new Map<string, number>();
  const add = (peer: string, count: number) => weights.set(peer, (weights.get(peer) ?? 0) + count);
  for (const c of snapshot.connections) add(c.peer, c.count);
  for (const c of snapshot.churn?.live ?? []) if (c.count > 0) add(c.peer, 0);
  for (const c of snapshot.churn?.closed ?? []) if (c.peer !== OVERFLOW_PEER) add(c.peer, 0);
  return weights;
}

export class Scrapes {
  private readonly now: () => number;
  private readonly labels: PeerLabels;
  private readonly series: ConnectionSeries;
  private readonly churn: ConnectionChurn;
  private readonly closing: ClosingTotalsByLabel;
  private lastDump: Promise<Snapshot> | undefined;
  private lastResult: Promise<ScrapeResult> | undefined;
  private churnWasUp = true;
  dumpErrors = 0;

  constructor(
    private readonly source: SnapshotTaker,
    private readonly options: ScrapeOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.labels = new PeerLabels(options.maxPeers, options.retentionMs);
    this.series = new ConnectionSeries(options.retentionMs);
    this.churn = new ConnectionChurn(options.retentionMs);
    this.closing = new ClosingTotalsByLabel(options.retentionMs);
  }

  /** The result of the dump in flight, or of a new one. */
  scrape(): Promise<ScrapeResult> {
    const startedAt = performance.now();
    const dump = this.source.take();
    if (dump !== this.lastDump || !this.lastResult) {
      this.lastDump = dump;
      this.lastResult = dump.then(
        (snapshot) => this.digest(snapshot, startedAt),
        (error: NodeJS.ErrnoException) => {
          this.dumpErrors++;
          this.options.log.error('socket dump failed', { err: error.message, code: error.code });
          return { ok: false as const, startedAt };
        },
      );
    }
    return this.lastResult;
  }

  private digest(snapshot: Snapshot, startedAt: number): ScrapeResult {
    const now = this.now();
    const known = this.labels.see(peerWeights(snapshot), now);
    const label = (peer: string) => (peer === OVERFLOW_PEER ? OTHER_PEER : known(peer));
    const update = this.series.update(snapshot.connections, label, now);
    let churn: ChurnTotals[] = [];
    let closing: ClosingTotals[] = [];
    if (snapshot.churn) {
      this.logChurnState(snapshot.churn);
      churn = this.churn.update(snapshot.churn.live, snapshot.churn.closed, label, now);
      closing = this.closing.update(snapshot.churn, label, churn, now);
    }
    const idle = foldByLabel(snapshot.idle ?? [], label, addIdle);
    const liveSegments = foldByLabel(snapshot.liveSegments ?? [], label, addLiveSegments);
    return { ok: true, snapshot, churn, closing, idle, liveSegments, startedAt, ...update };
  }

  /** Logs when the close watcher stops (it is restarted) and when it runs again. */
  private logChurnState(churn: NonNullable<Snapshot['churn']>): void {
    if (churn.error && this.churnWasUp) {
      this.options.log.error('close events stopped; restarting the close watcher (opened and closed miss what closed meanwhile)', {
        err: churn.error.message,
      });
    } else if (churn.up && !this.churnWasUp) {
      this.options.log.info('close events flowing again');
    }
    this.churnWasUp = churn.up;
  }
}
