// The benchmark's markdown: one section per size, the targets, the machine line.
import { PopulationClass } from './population';
import { Contender, CONTENDER_LABELS, CONTENDERS, median, quantile, WorkerResult } from './protocol';

export type StateCounts = Record<string, number>;

export interface SizeResult {
  size: number;
  classes: PopulationClass[];
  buildSeconds: number;
  /** ss -tan in the namespace right before and right after the rounds, per state. */
  before: { all: StateCounts; watched: StateCounts };
  after: { all: StateCounts; watched: StateCounts };
  worker: WorkerResult;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
  ss: string;
  nodeExporter: string;
  date: string;
}

export interface ReportOptions {
  rounds: number;
  warmup: number;
  refreshAge: number;
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms = (n: number) => (!Number.isFinite(n) ? 'n/a' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const signed = (n: number) => (n >= 0 ? `+${ms(n)}` : `−${ms(-n)}`);
const ratio = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}x` : 'n/a');
const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
const sizeName = (n: number) => (n % 1000 === 0 ? `${n / 1000}k` : String(n));

function states(counts: StateCounts): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  return `${int(total)} (${entries.map(([state, n]) => `${state} ${int(n)}`).join(', ')})`;
}

interface Row {
  contender: Contender;
  median: number;
  p90: number;
  min: number;
  max: number;
}

function rows(result: SizeResult): Row[] {
  return CONTENDERS.filter((c) => result.worker.times[c]?.length).map((c) => {
    const t = result.worker.times[c] as number[];
    return { contender: c, median: median(t), p90: quantile(t, 0.9), min: Math.min(...t), max: Math.max(...t) };
  });
}

const medianOf = (result: SizeResult, c: Contender) => median(result.worker.times[c] ?? []);

interface Target {
  name: string;
  /** Per size: [pass (null: no verdict in this column), detail]; undefined if not measured. */
  check: (result: SizeResult, all: SizeResult[]) => [boolean | null, string] | undefined;
}

const rssGrowthMb = (r: SizeResult) => (r.worker.rss.rounds[r.worker.rss.rounds.length - 1] - r.worker.rss.rounds[0]) / 1024;

const TARGETS: Target[] = [
  {
    name: 'full /metrics scrape no slower than ss (median)',
    check: (r) => {
      const x = medianOf(r, 'scrape') / medianOf(r, 'ss');
      return [x <= 1, `${ratio(x)} of ss`];
    },
  },
  {
    name: 'native dump clearly faster than ss (median at most 0.8x ss)',
    check: (r) => {
      const x = medianOf(r, 'native') / medianOf(r, 'ss');
      return [x <= 0.8, `${ratio(x)} of ss`];
    },
  },
  {
    name: 'node_exporter tcpstat at least 2.5x slower than the sockmon scrape',
    check: (r) => {
      if (!r.worker.times.node_exporter?.length) return undefined;
      const x = medianOf(r, 'node_exporter') / medianOf(r, 'scrape');
      return [x >= 2.5, `${ratio(x)}`];
    },
  },
  {
    name: 'listeners add at most the listening-table walk, within the noise (median added time per back-to-back set vs the walk as a dump of its own + the median gap between two identical reference dumps)',
    check: (r) => {
      const { addedMs, walkMs, noiseMs } = r.worker.listenerCost;
      return [addedMs <= walkMs + noiseMs, `${signed(addedMs)} ms vs ${ms(walkMs)} ms + noise ${ms(noiseMs)} ms`];
    },
  },
  {
    name: 'live reuse (live data-segments histogram) adds at most 5% to a scrape (median CPU added per back-to-back dump set vs the median full /metrics scrape wall time, and vs the dump CPU without it)',
    check: (r) => {
      const { cpuAddedMs, cpuReferenceMs, addedMs } = r.worker.liveReuseCost;
      const x = cpuAddedMs / medianOf(r, 'scrape');
      return [
        x <= 0.05,
        `${signed(cpuAddedMs)} ms CPU = ${(100 * x).toFixed(1)}% of a scrape, ${(100 * (cpuAddedMs / cpuReferenceMs)).toFixed(1)}% of the dump's CPU; wall ${signed(addedMs)} ms`,
      ];
    },
  },
  {
    name: 'sockmon RSS under 120 MB (after the rounds and the concurrency check)',
    check: (r) => [r.worker.rss.endKb < 120 * 1024, mb(r.worker.rss.endKb)],
  },
  {
    name: 'sockmon RSS flat over repeated scrapes (first to last timed round, at most +10 MB)',
    check: (r) => {
      const growth = rssGrowthMb(r);
      return [growth <= 10, `${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MB`];
    },
  },
  {
    name: 'sockmon RSS flat across sizes (end RSS spread at most 20 MB; verdict in the last column)',
    check: (r, all) => {
      if (r !== all[all.length - 1]) return [null, mb(r.worker.rss.endKb)];
      const rss = all.map((a) => a.worker.rss.endKb);
      const spread = (Math.max(...rss) - Math.min(...rss)) / 1024;
      return [spread <= 20, `${mb(r.worker.rss.endKb)}, spread ${spread.toFixed(1)} MB`];
    },
  },
  {
    name: 'event-loop delay p99 under 10 ms during native dumps',
    check: (r) => [r.worker.eventLoop.native.p99 < 10, `p99 ${ms(r.worker.eventLoop.native.p99)} ms`],
  },
];

export function sizeSection(result: SizeResult): string {
  const w = result.worker;
  const ss = medianOf(result, 'ss');
  const lines: string[] = [];
  lines.push(`### ${sizeName(result.size)} sockets (target ${int(result.size)})`, '');
  lines.push(
    `Population, counted with \`ss -tan\` in the namespace: before the rounds ${states(result.before.all)}; after ${states(result.after.all)}.`,
    `Watched (local port 80, peer in 203.0.113.96/27): before ${states(result.before.watched)}; after ${states(result.after.watched)}.`,
    `Built in ${result.buildSeconds.toFixed(1)} s; warm-up + ${w.times.native?.length ?? 0} rounds took ${w.roundsSeconds.toFixed(1)} s` +
      (w.refreshes.count
        ? `, including ${w.refreshes.count} untimed refresh(es) of the TIME-WAIT population (${w.refreshes.seconds.toFixed(1)} s)`
        : ' (no refresh needed)') +
      `; the oldest TIME-WAIT socket was ${w.oldestAgeSeconds.toFixed(0)} s old at the end (they last 60 s).`,
    '',
  );
  lines.push('| contender | median ms | p90 ms | min–max ms | vs ss |', '| --- | ---: | ---: | ---: | ---: |');
  for (const row of rows(result)) {
    lines.push(`| ${CONTENDER_LABELS[row.contender]} | ${ms(row.median)} | ${ms(row.p90)} | ${ms(row.min)}–${ms(row.max)} | ${ratio(row.median / ss)} |`);
  }
  lines.push('');
  const eld = w.eventLoop;
  const c = w.concurrency;
  lines.push(
    `- sockmon serve RSS (VmRSS): ${mb(w.rss.startKb)} at start; after each timed round ${w.rss.rounds.map((kb) => (kb / 1024).toFixed(1)).join(', ')} MB; ${mb(w.rss.endKb)} at the end (peak ${mb(w.rss.hwmKb)})` +
      (w.nodeExporterRssKb ? `; node_exporter ${mb(w.nodeExporterRssKb)}` : ''),
    `- event-loop delay in the process doing the native dumps, while they ran (monitorEventLoopDelay, 1 ms resolution, so ~1 ms is idle; a fresh histogram per dump: median p50, highest p99 and max): p50 ${ms(eld.native.p50)} ms, p99 ${ms(eld.native.p99)} ms, max ${ms(eld.native.max)} ms (${eld.native.samples} samples); around the naive parser, for contrast: max ${ms(eld.naive.max)} ms`,
    `- listeners, ${w.listenerCost.samples} back-to-back sets after the rounds (medians): the native dump with them ${ms(w.listenerCost.withListenersMs)} ms vs ` +
      `${ms(w.listenerCost.referenceMs)} ms for the reference without them (${ratio(w.listenerCost.withListenersMs / w.listenerCost.referenceMs)}); ` +
      `added per set ${signed(w.listenerCost.addedMs)} ms; the listening-table walk alone ${ms(w.listenerCost.walkMs)} ms, of which an empty dump ` +
      `(no table walked: threads, syscalls, N-API) ${ms(w.listenerCost.emptyMs)} ms; noise: two identical reference dumps of a set differ by ${ms(w.listenerCost.noiseMs)} ms (median); ` +
      `the dump reported ${int(w.listeners.count)} listener(s) of port 80 (queues ${int(w.listeners.queue)}, limits ${int(w.listeners.limit)})`,
    `- live reuse, ${w.liveReuseCost.samples} back-to-back sets (medians): sockmon serve's default dump ${ms(w.liveReuseCost.referenceMs)} ms wall, ${ms(w.liveReuseCost.cpuReferenceMs)} ms CPU; ` +
      `with the live data-segments histogram (tcp_info per ESTABLISHED socket) ${ms(w.liveReuseCost.withLiveMs)} ms wall; added per set ${signed(w.liveReuseCost.addedMs)} ms wall, ` +
      `${signed(w.liveReuseCost.cpuAddedMs)} ms CPU; noise: two identical dumps of a set differ by ${ms(w.liveReuseCost.noiseMs)} ms wall (median)`,
    `- per native dump (median): ${int(w.native.recvCalls)} recv calls, ${int(w.native.bytes)} bytes, CPU ${ms(w.native.userMs)} ms user + ${ms(w.native.sysMs)} ms kernel; restarts ${w.native.restarts}`,
    `- CPU per scrape (10 ms ticks, averaged over the timed rounds): sockmon serve ${ms(w.scrapeCpu.userMs)} ms user + ${ms(w.scrapeCpu.sysMs)} ms kernel` +
      (w.nodeExporterCpu ? `; node_exporter ${ms(w.nodeExporterCpu.userMs)} ms user + ${ms(w.nodeExporterCpu.sysMs)} ms kernel` : '') +
      `; one ss run: ${ms(w.ssCpu.realMs)} ms wall, ${ms(w.ssCpu.userMs)} ms user + ${ms(w.ssCpu.sysMs)} ms kernel`,
    `- sockmon serve CPU while the population was built (its close watcher gets a destroy event per closed socket): ${ms(w.buildCpu.userMs)} ms user + ${ms(w.buildCpu.sysMs)} ms kernel for ${int(w.buildCpu.connections)} connections made and closed`,
    `- ${c.n} concurrent scrapes: ${ms(c.concurrentMs)} ms vs ${ms(c.singleMs)} ms for one (${ratio(c.concurrentMs / c.singleMs)}); sockmon CPU ${ms(c.concurrentCpuMs)} ms vs ${ms(c.singleCpuMs)} ms (${ratio(c.concurrentCpuMs / c.singleCpuMs)}); distinct dumps per burst (by sockmon_scrape_duration_seconds): ${c.dumpsPerBurst}`,
    `- watched sockets seen in the last round: native dump ${int(w.seen.native[w.seen.native.length - 1])} (min ${int(Math.min(...w.seen.native))}, max ${int(Math.max(...w.seen.native))} over the rounds), /metrics ${int(w.seen.scrape)}, naive parser ${int(w.seen.naive)} of ${int(w.seen.naiveLines)} /proc lines` +
      (w.seen.nodeExporter
        ? `; node_exporter (whole namespace, no filter): established ${int(w.seen.nodeExporter.established)}, time_wait ${int(w.seen.nodeExporter.timeWait)}`
        : ''),
    `- spawning \`true\` from the worker takes ${ms(w.spawnTrueMs)} ms: the process-start share of the whole-command rows`,
    '',
  );
  return lines.join('\n');
}

export function targetsSection(results: SizeResult[]): string {
  const lines = ['### Targets', '', `| target | ${results.map((r) => sizeName(r.size)).join(' | ')} |`, `| --- |${results.map(() => ' --- |').join('')}`];
  for (const target of TARGETS) {
    const cells = results.map((r) => {
      const outcome = target.check(r, results);
      if (!outcome) return 'not measured';
      return outcome[0] === null ? outcome[1] : `${outcome[0] ? 'PASS' : 'MISS'} (${outcome[1]})`;
    });
    lines.push(`| ${target.name} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

export function formatReport(machine: Machine, options: ReportOptions, results: SizeResult[]): string {
  const head = [
    '## sockmon benchmark',
    '',
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), kernel ${machine.kernel}, node ${machine.node}, ${machine.ss}, ${machine.nodeExporter}, ${machine.date}.`,
    '',
    'sockmon serve runs with its defaults (close watcher on: its dump also asks for the other live states); the native-dump row is `dump(dumpRequest(watch))` for the default watch: the connections, then the listeners of port 80 on the same sockets and threads. Its reference row is the same dump without the listeners, and the listening-table row the LISTEN request alone (ports-only filter, both families in parallel): what the listeners may cost.',
    '',
    `Each size is built in a fresh network namespace and measured right away: ${options.warmup} warm-up round(s), then ${options.rounds} timed rounds; within a round the contenders run one after another, starting one further each round (round-robin). Medians; "vs ss" is median / ss median (above 1 is slower than ss). TIME-WAIT sockets last 60 s: if a round could end more than ${options.refreshAge} s after the oldest was made, the TIME-WAIT population is first re-made over the same 4-tuples (untimed; each new connection replaces its old TIME-WAIT socket, so the count stays and the lifetimes restart).`,
    '',
  ];
  return [...head, ...results.map(sizeSection), targetsSection(results)].join('\n');
}

export function populationTable(classes: PopulationClass[]): string {
  return classes.map((c) => `  ${int(c.sockets).padStart(9)}  ${c.label}`).join('\n');
}
