// What the driver (run.ts, host side) and the worker (worker.ts, inside the namespace) exchange, and the
// statistics both use.

export const WATCH_CIDR = '203.0.113.96/27';
export const WATCH_PORT = 80;

/** The contenders, in the order of round 0; round r starts at contender r (mod n). */
export const CONTENDERS = ['native', 'native_connections', 'native_listen', 'native_idle', 'scrape', 'ss', 'snapshot', 'node_exporter', 'naive'] as const;
export type Contender = (typeof CONTENDERS)[number];

export const CONTENDER_LABELS: Record<Contender, string> = {
  native: 'sockmon native dump (in-process, dump only: connections, then listeners)',
  native_connections: 'reference: the same dump without the listeners (connections only)',
  native_listen: 'the listening-table walk alone (LISTEN, ports-only filter)',
  native_idle: 'sockmon native dump with tcp_info for --idle (in-process, dump only)',
  scrape: 'sockmon full /metrics scrape (HTTP)',
  ss: "ss -Htn state established state time-wait '( sport = :80 )' dst 203.0.113.96/27 (whole command)",
  snapshot: 'sockmon snapshot --json (whole command, node start included)',
  node_exporter: 'node_exporter tcpstat, one /metrics scrape',
  naive: 'naive JS /proc/net/tcp + tcp6 parser (in-process)',
};

export const SS_ARGS = ['-Htn', 'state', 'established', 'state', 'time-wait', '( sport = :80 )', 'dst', WATCH_CIDR];

export interface WorkerConfig {
  rounds: number;
  warmup: number;
  /** Scrapes fired at once in the shared-dump check. */
  concurrent: number;
  sockmonPort: number;
  nodeExporterPort: number;
  /** node_exporter binary, or null to leave that contender out. */
  nodeExporter: string | null;
  /** loadgen binary and the churn jobs that built the TIME-WAIT population (one process per entry). */
  loadgen: string;
  churn: string[][];
  /**
   * TIME-WAIT lasts 60 s: before a round that could end later than this many seconds after the oldest
   * TIME-WAIT socket was made, the worker re-runs the churn jobs (untimed). Re-made over the same 4-tuples,
   * each connection replaces its old TIME-WAIT socket, so the population keeps its size and gets 60 s anew.
   */
  refreshAgeSeconds: number;
}

export interface Histogram {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

export interface WorkerResult {
  /** Milliseconds per timed round, per contender. */
  times: Partial<Record<Contender, number[]>>;
  /** Wall-clock seconds the warm-up and timed rounds took (refreshes included). */
  roundsSeconds: number;
  /** Population refreshes between rounds, and the seconds they took. */
  refreshes: { count: number; seconds: number };
  /** Age of the oldest TIME-WAIT socket when the measurements ended. */
  oldestAgeSeconds: number;
  /** Watched sockets each contender saw in its last round (node_exporter: the namespace's totals). */
  seen: {
    native: number[];
    scrape: number;
    naive: number;
    naiveLines: number;
    nodeExporter?: { established: number; timeWait: number };
  };
  native: { recvCalls: number; bytes: number; userMs: number; sysMs: number; restarts: number };
  /** Listeners of the watched port the native dump reported in its last round, and their queues. */
  listeners: { count: number; queue: number; limit: number };
  /**
   * What the listeners cost, measured back to back after the rounds: `samples` sets of the connections-only
   * reference, the same dump with the listeners, the listening-table walk alone and an empty dump (no state
   * asked, no table walked: the fixed cost of a dump call) and the reference again, the order reversed every
   * other set. Medians in ms; `addedMs` is the median of the per-set differences (with - reference), `noiseMs`
   * the median difference between the two identical reference dumps of a set (|reference - again|).
   */
  listenerCost: { samples: number; referenceMs: number; withListenersMs: number; addedMs: number; walkMs: number; emptyMs: number; noiseMs: number };
  /**
   * What live reuse costs (sockmon_tcp_connection_live_data_segments_in: tcp_info per ESTABLISHED socket,
   * bucketed by data segments): `samples` back-to-back sets of sockmon serve's default dump without it, with
   * it, and without it again. Medians in ms: wall time, the added wall time per set, the noise (|reference -
   * again|), and this process's CPU time per dump (the dump threads included) without it and added by it.
   */
  liveReuseCost: { samples: number; referenceMs: number; withLiveMs: number; addedMs: number; noiseMs: number; cpuReferenceMs: number; cpuAddedMs: number };
  /** monitorEventLoopDelay in ms (1 ms resolution) while native dumps ran; the naive parser's for contrast. */
  eventLoop: { native: Histogram; naive: Histogram };
  /** sockmon serve, from /proc/<pid>/status, kB: at start, after each timed round, at the end, peak. */
  rss: { startKb: number; rounds: number[]; endKb: number; hwmKb: number };
  /** node_exporter CPU per scrape during the timed rounds (10 ms ticks). */
  nodeExporterCpu?: { userMs: number; sysMs: number };
  /** One extra ss run under bash's time. */
  ssCpu: { realMs: number; userMs: number; sysMs: number };
  nodeExporterRssKb?: number;
  /** sockmon serve CPU per scrape: utime/stime (10 ms ticks) read around each timed scrape, summed, averaged. */
  scrapeCpu: { userMs: number; sysMs: number };
  /** sockmon serve CPU while the population was built, and the connections made and closed then. */
  buildCpu: { userMs: number; sysMs: number; connections: number };
  concurrency: {
    n: number;
    singleMs: number;
    concurrentMs: number;
    singleCpuMs: number;
    concurrentCpuMs: number;
    /** Most distinct sockmon_scrape_duration_seconds values among the n answers of one burst: 1 = one shared dump. */
    dumpsPerBurst: number;
  };
  /** Median time to spawn /bin/true from the worker: the process-start share of the whole-command contenders. */
  spawnTrueMs: number;
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank.
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const median = (values: readonly number[]) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
