// The close path's cost (bench/README.md, "Close path"): host CPU per connection ended, from /proc/stat
// around N connections (closeload.c, client-side RST: no TIME-WAIT), with nothing listening to close
// events, with the floor (closefloor.c: the same kernel filter, paced recvmmsg drain, counting only) and
// with `sockmon serve`, for the watched port and an unwatched one; then a burst: many closes per second
// against sockmon's default buffer, with the lost count. All in one fresh namespace, run from run.ts.
import { ChildProcess, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { compileCloseFilter, encodeCloseFilter } from '../src/kernel/close_filter';
import { parseCidr } from '../src/kernel/filter';
import { lines } from '../test/helpers/lines';
import { NetworkNamespace } from '../test/helpers/netns';
import { parseSamples } from '../test/helpers/promtext';
import { median, WATCH_CIDR, WATCH_PORT } from './protocol';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'cli.js');
const SOURCES = { closeload: 'closeload.c', closefloor: 'closefloor.c' } as const;
const BACKEND = '203.0.113.10';
const UNWATCHED_PORT = 8080;
const PEER_FIRST = '203.0.113.97'; // peers 203.0.113.97-125, inside the watched /27
const PEERS = 29;
const SOCKMON_ADDRESS = '127.0.0.1:19470';
/** sockmon's default --churn.receive-buffer, given to the floor too. */
const RECEIVE_BUFFER = 4 << 20;
/** The watcher's pause after each drain (native/close_watcher.h kPace), given to the floor too. */
const PAUSE_MS = 20;
/** Held connections per burst process: 2 descriptors each, under the nofile limit of 20000. */
const BURST_PER_PROCESS = 4000;

export const SCENARIOS = ['nothing', 'floor_watched', 'floor_unwatched', 'sockmon_watched', 'sockmon_unwatched'] as const;
export type Scenario = (typeof SCENARIOS)[number];
export const SCENARIO_LABELS: Record<Scenario, string> = {
  nothing: 'nothing listening to close events',
  floor_watched: 'floor (closefloor.c), watched port',
  floor_unwatched: 'floor (closefloor.c), unwatched port',
  sockmon_watched: 'sockmon serve, watched port',
  sockmon_unwatched: 'sockmon serve, unwatched port',
};

export interface ClosePathOptions {
  connections: number;
  repeats: number;
  burstRate: number;
  burstSeconds: number;
}

export interface Run {
  /** Host CPU (all CPUs, /proc/stat busy time) per connection, µs. */
  hostUs: number;
  /** closeload's own CPU plus the listener's and the kernel workers', per connection, µs. */
  processUs: number;
  /** Of that, the listener's own CPU (all its threads), per connection, µs. */
  listenerUs: number;
  /** Connections per second closeload reached. */
  rate: number;
  /** What the listener saw: floor events, or sockmon's closed/opened deltas and lost count. */
  check: string;
  exact: boolean;
}

export interface BurstResult {
  listener: BurstListener;
  planned: number;
  made: number;
  processes: number;
  seconds: number;
  rate: number;
  closed: number;
  opened: number;
  lost: number;
  /** The listener's own CPU over the burst, seconds. */
  listenerCpu: number;
}

export interface ClosePathResult {
  options: ClosePathOptions;
  runs: Record<Scenario, Run[]>;
  bursts: BurstResult[];
  /** Other load on the machine while idle: busy share of both CPUs over 2 s before the runs. */
  idleBusyShare: number;
  /** When the section finished (ISO), and on which kernel. */
  finished: string;
  kernel: string;
}

const log = (message: string) => process.stderr.write(`bench: close path: ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Busy jiffies of all CPUs (user nice system irq softirq steal; guest time is inside user). */
function hostBusy(): { busy: number; total: number } {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** utime + stime of a process, in jiffies. */
function processJiffies(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * CPU of the kernel's worker threads (kworker, ksoftirqd), in jiffies: the destroy events are built and
 * multicast on a workqueue (sock_diag_events), not by the closing process, so its cost lands there.
 */
function kernelWorkerJiffies(): Map<number, number> {
  const jiffies = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!/^(kworker|ksoftirqd)/.test(comm)) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      jiffies.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // gone meanwhile
    }
  }
  return jiffies;
}

/** CPU the kernel workers spent between two snapshots; a worker that ended meanwhile is left out. */
function workerDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, jiffies] of after) total += jiffies - (before.get(pid) ?? 0);
  return total;
}

const JIFFY_US = 10_000; // USER_HZ 100

function exitOf(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', resolve));
}

function parseDone(line: string): { n: number; errors: number; first: number; last: number; cpu: number } {
  const field = (name: string) => Number(new RegExp(`${name}=([\\d.]+)`).exec(line)?.[1] ?? NaN);
  return { n: field('n'), errors: field('errors'), first: field('first'), last: field('last'), cpu: field('cpu') };
}

export async function buildClosePathTools(outDir: string): Promise<Record<keyof typeof SOURCES, string>> {
  const built = {} as Record<keyof typeof SOURCES, string>;
  for (const [name, source] of Object.entries(SOURCES) as [keyof typeof SOURCES, string][]) {
    built[name] = path.join(outDir, name);
    await run('gcc', ['-O2', '-Wall', '-o', built[name], path.join(ROOT, 'bench', source)]);
  }
  return built;
}

/** A listener for one scenario: started, ready, and stopped with what it counted. */
interface Listener {
  pid: number;
  /** Checks what it saw for `n` connections to a watched (true) or unwatched port. */
  finish(n: number, watched: boolean): Promise<{ check: string; exact: boolean }>;
}

async function startFloor(ns: NetworkNamespace, floor: string, filterHex: string, buffer = RECEIVE_BUFFER): Promise<Listener> {
  const child = ns.spawn(floor, [filterHex, String(buffer), String(PAUSE_MS)]);
  const next = lines(child, 'closefloor');
  await next('ready', 10_000);
  return {
    pid: child.pid as number,
    finish: async (n, watched) => {
      await sleep(200); // the last pause
      child.kill('SIGTERM');
      const line = 'events=' + (await next('events=', 10_000));
      await exitOf(child);
      const events = Number(/events=(\d+)/.exec(line)?.[1]);
      const drops = Number(/drops=(\d+)/.exec(line)?.[1]);
      return { check: `floor events ${events}, drops ${drops}`, exact: events === (watched ? n : 0) && drops === 0 };
    },
  };
}

async function scrape(ns: NetworkNamespace) {
  const samples = parseSamples(await ns.fetch(`http://${SOCKMON_ADDRESS}/metrics`));
  const one = (name: string) => samples.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
  return {
    closed: one('sockmon_tcp_connections_closed_total'),
    opened: one('sockmon_tcp_connections_opened_total'),
    lost: one('sockmon_close_events_lost_total'),
  };
}

async function startSockmon(
  ns: NetworkNamespace,
  buffer = RECEIVE_BUFFER,
): Promise<Listener & { scrape: () => ReturnType<typeof scrape>; stop: () => Promise<void> }> {
  const args = ['serve', '--web.listen-address', SOCKMON_ADDRESS, '--port', String(WATCH_PORT), '--cidr', WATCH_CIDR];
  if (buffer !== RECEIVE_BUFFER) args.push('--churn.receive-buffer', String(buffer));
  const child = ns.spawn(process.execPath, [CLI, ...args]);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  for (let waited = 0; !/msg=listening/.test(stderr); waited += 50) {
    if (child.exitCode !== null || waited > 20_000) throw new Error(`sockmon serve did not start: ${stderr}`);
    await sleep(50);
  }
  const before = await scrape(ns); // the churn baseline: live connections now
  await sleep(1000); // let start-up and the first scrape's work settle
  const stop = async () => {
    child.kill('SIGTERM');
    await exitOf(child);
  };
  return {
    pid: child.pid as number,
    scrape: () => scrape(ns),
    stop,
    finish: async (n, watched) => {
      const expected = watched ? n : 0;
      let after = await scrape(ns);
      for (let i = 0; i < 50 && after.closed - before.closed < expected; i++) {
        await sleep(100);
        after = await scrape(ns);
      }
      await stop();
      const closed = after.closed - before.closed;
      const opened = after.opened - before.opened;
      const lost = after.lost - before.lost;
      return { check: `sockmon closed ${closed}, opened ${opened}, lost ${lost}`, exact: closed === expected && opened === expected && lost === 0 };
    },
  };
}

async function measure(ns: NetworkNamespace, tools: Record<keyof typeof SOURCES, string>, scenario: Scenario, n: number, filterHex: string): Promise<Run> {
  const watched = !scenario.endsWith('unwatched');
  const listener = scenario.startsWith('floor')
    ? await startFloor(ns, tools.closefloor, filterHex)
    : scenario.startsWith('sockmon')
      ? await startSockmon(ns)
      : undefined;
  await sleep(300);
  const listenerBefore = listener ? processJiffies(listener.pid) : 0;
  const workersBefore = kernelWorkerJiffies();
  const hostBefore = hostBusy();
  const load = ns.spawn(tools.closeload, ['churn', String(n), BACKEND, String(watched ? WATCH_PORT : UNWATCHED_PORT), PEER_FIRST, String(PEERS)]);
  const done = parseDone(await lines(load, 'closeload')('done', 300_000));
  await exitOf(load);
  // The listener's last batch comes up to one pause later: give it that, inside the window.
  await sleep(PAUSE_MS * 3);
  const hostAfter = hostBusy();
  const workerJiffies = workerDelta(workersBefore, kernelWorkerJiffies());
  const listenerJiffies = listener ? processJiffies(listener.pid) - listenerBefore : 0;
  if (done.errors > 0 || done.n !== n) throw new Error(`closeload: ${done.n} of ${n} connections, ${done.errors} errors`);
  const { check, exact } = listener ? await listener.finish(n, watched) : { check: '-', exact: true };
  return {
    hostUs: ((hostAfter.busy - hostBefore.busy) * JIFFY_US) / n,
    processUs: (done.cpu * 1e6 + (listenerJiffies + workerJiffies) * JIFFY_US) / n,
    listenerUs: (listenerJiffies * JIFFY_US) / n,
    rate: n / (done.last - done.first),
    check,
    exact,
  };
}

/** Who listens in a burst, with which receive buffer. */
export interface BurstListener {
  kind: 'sockmon' | 'floor';
  buffer: number;
}

/** Counts of a burst's listener: sockmon's counter deltas, or the floor's events and drops. */
async function startBurstListener(ns: NetworkNamespace, tools: Record<keyof typeof SOURCES, string>, filterHex: string, listener: BurstListener) {
  if (listener.kind === 'sockmon') {
    const sockmon = await startSockmon(ns, listener.buffer);
    const before = await sockmon.scrape();
    return {
      pid: sockmon.pid,
      finish: async () => {
        const after = await sockmon.scrape();
        await sockmon.stop();
        return { closed: after.closed - before.closed, opened: after.opened - before.opened, lost: after.lost - before.lost };
      },
      kill: () => sockmon.stop(),
    };
  }
  const child = ns.spawn(tools.closefloor, [filterHex, String(listener.buffer), String(PAUSE_MS)]);
  const next = lines(child, 'closefloor');
  await next('ready', 10_000);
  return {
    pid: child.pid as number,
    finish: async () => {
      child.kill('SIGTERM');
      const line = await next('events=', 10_000);
      await exitOf(child);
      return { closed: Number(/^(\d+)/.exec(line)?.[1]), opened: NaN, lost: Number(/drops=(\d+)/.exec(line)?.[1]) };
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exitOf(child);
    },
  };
}

/** Many closes per second: processes holding watched connections end them evenly over `seconds`. */
async function burst(
  ns: NetworkNamespace,
  tools: Record<keyof typeof SOURCES, string>,
  filterHex: string,
  rate: number,
  seconds: number,
  listener: BurstListener,
): Promise<BurstResult> {
  const planned = Math.round(rate * seconds);
  const processes = Math.ceil(planned / BURST_PER_PROCESS);
  const counter = await startBurstListener(ns, tools, filterHex, listener);
  const holders: ChildProcess[] = [];
  let finished = false;
  try {
    let made = 0;
    const nexts = [];
    for (let p = 0; p < processes; p++) {
      const count = Math.min(BURST_PER_PROCESS, planned - p * BURST_PER_PROCESS);
      // Each process listens on its own address (198.51.100.x:80) and holds its connections.
      const holder = ns.spawn(tools.closeload, ['burst', String(count), `198.51.100.${p + 1}`, String(WATCH_PORT), PEER_FIRST, String(PEERS), String(seconds)]);
      holders.push(holder);
      const next = lines(holder, `closeload burst ${p + 1}`);
      made += Number(/made=(\d+)/.exec(await next('ready', 120_000))?.[1]);
      nexts.push(next);
    }
    log(`burst: ${made} connections held by ${processes} processes; ending them over ${seconds} s`);
    await sleep(1000);
    const cpuBefore = processJiffies(counter.pid);
    for (const holder of holders) holder.stdin?.write('go\n');
    const dones = await Promise.all(nexts.map(async (next) => parseDone(await next('done', 120_000))));
    await sleep(1000);
    const listenerCpu = ((processJiffies(counter.pid) - cpuBefore) * JIFFY_US) / 1e6;
    const counts = await counter.finish();
    finished = true;
    const span = Math.max(...dones.map((d) => d.last)) - Math.min(...dones.map((d) => d.first));
    return { listener, planned, made, processes, seconds: span, rate: made / span, listenerCpu, ...counts };
  } finally {
    for (const holder of holders) holder.kill('SIGKILL');
    await Promise.all(holders.map(exitOf));
    if (!finished) await counter.kill();
  }
}

/** Runs the close-path section in `ns` (a fresh namespace with the benchmark's addresses). */
export async function runClosePath(ns: NetworkNamespace, tools: Record<keyof typeof SOURCES, string>, options: ClosePathOptions): Promise<ClosePathResult> {
  const filterHex = Buffer.from(encodeCloseFilter(compileCloseFilter({ ports: [WATCH_PORT], cidrs: [parseCidr(WATCH_CIDR)] }))).toString('hex');
  const idleBefore = hostBusy();
  await sleep(2000);
  const idleAfter = hostBusy();
  const idleBusyShare = (idleAfter.busy - idleBefore.busy) / (idleAfter.total - idleBefore.total);
  log(`other load while idle: ${(idleBusyShare * 100).toFixed(1)}% of the CPUs`);

  const runs = Object.fromEntries(SCENARIOS.map((s) => [s, [] as Run[]])) as Record<Scenario, Run[]>;
  // Warm-up (caches, the namespace's hash tables), untimed; then round-robin rounds.
  await measure(ns, tools, 'nothing', Math.min(options.connections, 20_000), filterHex);
  for (let round = 0; round < options.repeats; round++) {
    for (let i = 0; i < SCENARIOS.length; i++) {
      const scenario = SCENARIOS[(round + i) % SCENARIOS.length];
      const result = await measure(ns, tools, scenario, options.connections, filterHex);
      runs[scenario].push(result);
      log(
        `round ${round + 1}/${options.repeats} ${scenario}: ${result.hostUs.toFixed(2)} µs/connection host, ${result.processUs.toFixed(2)} µs attributed (listener ${result.listenerUs.toFixed(2)}); ${Math.round(result.rate)}/s; ${result.check}${result.exact ? '' : ' NOT EXACT'}`,
      );
    }
  }
  const bursts: BurstResult[] = [];
  // sockmon at its default buffer around the target rate; the floor at the target, for comparison; and
  // sockmon with 4 times the buffer, which tells a buffer too small for the pace from a thread starved of CPU.
  const plans: [number, BurstListener][] = [
    [options.burstRate / 2, { kind: 'sockmon', buffer: RECEIVE_BUFFER }],
    [options.burstRate, { kind: 'sockmon', buffer: RECEIVE_BUFFER }],
    [options.burstRate * 2, { kind: 'sockmon', buffer: RECEIVE_BUFFER }],
    [options.burstRate, { kind: 'floor', buffer: RECEIVE_BUFFER }],
    [options.burstRate, { kind: 'sockmon', buffer: RECEIVE_BUFFER * 4 }],
  ];
  for (const [rate, listener] of plans) {
    const result = await burst(ns, tools, filterHex, rate, options.burstSeconds, listener);
    log(
      `burst, ${listener.kind} ${listener.buffer >> 20} MiB, ${rate}/s planned: ${Math.round(result.rate)}/s reached over ${result.seconds.toFixed(2)} s; counted ${result.closed} of ${result.made}, lost ${result.lost}, listener CPU ${result.listenerCpu.toFixed(2)} s`,
    );
    bursts.push(result);
  }
  return { options, runs, bursts, idleBusyShare, finished: new Date().toISOString(), kernel: os.release() };
}

const us = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const spread = (values: number[]) => `${us(Math.min(...values))}–${us(Math.max(...values))}`;

/** PASS needs no loss at (nearly) the planned rate: the closing processes may not reach it on this machine. */
function burstVerdict(burst: BurstResult | undefined, rate: number): string {
  if (!burst) return 'not run';
  const lossless = burst.lost === 0 && burst.closed === burst.made;
  const reached = burst.rate >= 0.95 * rate;
  if (!lossless) return `MISS (${int(burst.rate)}/s reached, ${int(burst.lost)} lost)`;
  return reached
    ? `PASS (${int(burst.rate)}/s reached, none lost)`
    : `none lost, but the closing processes reached only ${int(burst.rate)}/s (both CPUs busy closing)`;
}

export function closePathSection(result: ClosePathResult): string {
  const { runs, options } = result;
  const host = (s: Scenario) => median(runs[s].map((r) => r.hostUs));
  const attributed = (s: Scenario) => median(runs[s].map((r) => r.processUs));
  const added = (s: Scenario, of: (s: Scenario) => number) => of(s) - of('nothing');
  const ratio = (sockmon: Scenario, floor: Scenario, of: (s: Scenario) => number) => added(sockmon, of) / added(floor, of);
  const rows = SCENARIOS.map((s) => {
    const exact = runs[s].every((r) => r.exact);
    const addedCell = (of: (s: Scenario) => number) => (s === 'nothing' ? '—' : us(added(s, of)));
    return `| ${SCENARIO_LABELS[s]} | ${us(host(s))} | ${addedCell(host)} | ${spread(runs[s].map((r) => r.hostUs))} | ${us(attributed(s))} | ${addedCell(attributed)} | ${spread(runs[s].map((r) => r.processUs))} | ${s === 'nothing' ? '—' : us(median(runs[s].map((r) => r.listenerUs)))} | ${int(median(runs[s].map((r) => r.rate)))} | ${runs[s].at(-1)?.check ?? ''}${exact ? '' : ' (NOT EXACT in some run)'} |`;
  });
  // A negative ratio (someone's added CPU below nothing's) is noise, not a result.
  const verdict = (r: number) => (!(r >= 0) ? 'noise' : r <= 1.1 ? 'PASS' : 'MISS');
  const ratios = (of: (s: Scenario) => number) => {
    const watched = ratio('sockmon_watched', 'floor_watched', of);
    const unwatched = ratio('sockmon_unwatched', 'floor_unwatched', of);
    return `watched **${us(watched)}x** (${verdict(watched)}), unwatched **${us(unwatched)}x** (${verdict(unwatched)})`;
  };
  const burstRows = result.bursts.map(
    (b) =>
      `| ${b.listener.kind === 'floor' ? 'floor' : 'sockmon'}, ${b.listener.buffer >> 20} MiB | ${int(b.planned / options.burstSeconds)}/s × ${options.burstSeconds} s | ${int(b.made)} (${b.processes} processes) | ${int(b.rate)}/s over ${b.seconds.toFixed(2)} s | ${int(b.closed)} | ${Number.isFinite(b.opened) ? int(b.opened) : '—'} | ${int(b.lost)} | ${b.listenerCpu.toFixed(2)} s |`,
  );
  const sockmonDefault = result.bursts.filter((b) => b.listener.kind === 'sockmon' && b.listener.buffer === RECEIVE_BUFFER);
  const target = sockmonDefault.find((b) => b.planned === Math.round(options.burstRate * options.burstSeconds));
  const lossless = sockmonDefault.filter((b) => b.lost === 0 && b.closed === b.made).map((b) => b.rate);
  return [
    '### Close path',
    '',
    `Run finished ${result.finished}, kernel ${result.kernel}, ${os.availableParallelism()} CPUs (\`npm run bench:close\`).`,
    '',
    `CPU per connection for ${int(options.connections)} connections made and ended one after another by closeload.c (the client resets: no TIME-WAIT; each connection destroys two sockets, two close events), in a fresh namespace; ${options.repeats} rounds, the scenarios round-robin, medians. sockmon serve watches port ${WATCH_PORT}, peers ${WATCH_CIDR}; the unwatched runs use port ${UNWATCHED_PORT}. The floor (closefloor.c) attaches the same filter program, drains with recvmmsg and pauses ${PAUSE_MS} ms like sockmon, at nice -10, and only counts. "host": busy time of all CPUs from /proc/stat around the run (10 ms ticks), everything on the machine included. "attributed": closeload's CPU + the listener's + the kernel worker threads' (kworker, ksoftirqd: the destroy events are built and multicast on a workqueue), which leaves out other people's processes. Other load on the machine in the 2 s before the runs: ${(result.idleBusyShare * 100).toFixed(1)}% of the CPUs.`,
    '',
    '| scenario | host µs/conn | host added | host min–max | attributed µs/conn | attributed added | attributed min–max | of which the listener | conn/s | check (last run) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows,
    '',
    `- (sockmon − nothing) / (floor − nothing), target ≤ 1.1x: on host CPU ${ratios(host)}; on attributed CPU ${ratios(attributed)}`,
    `- added per connection, attributed: floor ${us(added('floor_watched', attributed))} µs watched / ${us(added('floor_unwatched', attributed))} µs unwatched, sockmon ${us(added('sockmon_watched', attributed))} µs / ${us(added('sockmon_unwatched', attributed))} µs; host: floor ${us(added('floor_watched', host))} / ${us(added('floor_unwatched', host))} µs, sockmon ${us(added('sockmon_watched', host))} / ${us(added('sockmon_unwatched', host))} µs. A difference within the min–max spread of the runs is noise.`,
    `- opened/closed exact in every sockmon run (closed and opened deltas = connections, lost 0): ${SCENARIOS.filter((s) => s.startsWith('sockmon')).every((s) => runs[s].every((r) => r.exact)) ? 'yes' : 'NO'}`,
    '',
    `Burst: processes of ${int(BURST_PER_PROCESS)} held connections each (all watched) end them evenly over ${options.burstSeconds} s, all at once, against sockmon serve with its default buffer (${RECEIVE_BUFFER >> 20} MiB), the floor with the same buffer, and sockmon with 4 times the buffer. "counted": sockmon's closed delta, or the floor's events.`,
    '',
    '| listener | planned | connections | reached | counted | opened | lost | listener CPU |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...burstRows,
    '',
    `- target, no loss at ${int(options.burstRate)} closes/s for ${options.burstSeconds} s with the default buffer: ${burstVerdict(target, options.burstRate)}; highest rate reached with zero loss at the default buffer: ${lossless.length ? `${int(Math.max(...lossless))}/s` : 'none'}`,
    '',
  ].join('\n');
}
