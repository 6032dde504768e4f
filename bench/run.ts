// `npm run bench` (as root): for each size, a fresh private namespace sockmon-bench-<pid>-<n> with a socket
// population, then the timed rounds in an in-namespace worker (worker.ts); prints a markdown report and
// writes it to bench/results.md. See bench/README.md.
//
//   --sizes 10000,100000,300000   (or SOCKMON_BENCH_SIZES; 10k/300k also work)
//   --rounds 7 --warmup 1         (or SOCKMON_BENCH_ROUNDS / SOCKMON_BENCH_WARMUP)
//   --concurrent 20               scrapes fired at once in the shared-dump check
//   --out bench/results.md | --no-out
//   --no-node-exporter            leave node_exporter out
//   --refresh-age 48              re-make the TIME-WAIT population before a round that could end later than
//                                 this many seconds after its oldest socket was made (they last 60 s)
//   --close-path-only             only the close-path section (also `npm run bench:close`); with --out it
//                                 replaces that section of the file and keeps the rest
//   --no-close-path               leave the close-path section out
//   --close-connections 100000 --close-repeats 7 --burst-rate 100000 --burst-seconds 2
import { ChildProcess, execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { lines } from '../test/helpers/lines';
import { clearStale, hostTestAddresses, NetworkNamespace } from '../test/helpers/netns';
import { buildClosePathTools, closePathSection, ClosePathOptions, runClosePath } from './close-path';
import { NAMESPACE_ADDRESSES, planPopulation, PopulationPlan } from './population';
import { WATCH_CIDR, WorkerConfig, WorkerResult } from './protocol';
import { formatReport, Machine, populationTable, SizeResult, sizeSection, StateCounts } from './report';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const WORKER = path.join(__dirname, 'worker.js');
const LOADGEN_SOURCE = path.join(ROOT, 'bench', 'loadgen.c');
const LOADGEN = path.join(__dirname, 'loadgen');
const NODE_EXPORTER_CANDIDATES = ['prometheus-node-exporter', 'node_exporter'];

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

interface Options {
  sizes: number[];
  rounds: number;
  warmup: number;
  concurrent: number;
  out: string | null;
  nodeExporter: boolean;
  refreshAge: number;
  /** Sizes and/or the close-path section. */
  sizesSection: boolean;
  closePath: ClosePathOptions | null;
}

function parseCount(text: string, what: string, min: number): number {
  const match = /^(\d+)(k)?$/i.exec(text.trim());
  const value = match ? Number(match[1]) * (match[2] ? 1000 : 1) : NaN;
  if (!(value >= min)) throw new Error(`${what}: expected a whole number of at least ${min}, got "${text}"`);
  return value;
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  const options: Options = {
    sizes: (env.SOCKMON_BENCH_SIZES ?? '10000,100000,300000').split(',').map((s) => parseCount(s, 'SOCKMON_BENCH_SIZES', 100)),
    rounds: parseCount(env.SOCKMON_BENCH_ROUNDS ?? '7', 'SOCKMON_BENCH_ROUNDS', 1),
    warmup: parseCount(env.SOCKMON_BENCH_WARMUP ?? '1', 'SOCKMON_BENCH_WARMUP', 0),
    concurrent: 20,
    out: path.join(ROOT, 'bench', 'results.md'),
    nodeExporter: true,
    refreshAge: 48,
    sizesSection: true,
    closePath: { connections: 100_000, repeats: 7, burstRate: 100_000, burstSeconds: 2 },
  };
  const closePath = () => {
    if (!options.closePath) throw new Error('the close-path flags and --no-close-path do not go together');
    return options.closePath;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--sizes')
      options.sizes = value()
        .split(',')
        .map((s) => parseCount(s, '--sizes', 100));
    else if (flag === '--rounds') options.rounds = parseCount(value(), '--rounds', 1);
    else if (flag === '--warmup') options.warmup = parseCount(value(), '--warmup', 0);
    else if (flag === '--concurrent') options.concurrent = parseCount(value(), '--concurrent', 2);
    else if (flag === '--out') options.out = path.resolve(value());
    else if (flag === '--no-out') options.out = null;
    else if (flag === '--no-node-exporter') options.nodeExporter = false;
    else if (flag === '--refresh-age') options.refreshAge = Math.min(55, parseCount(value(), '--refresh-age', 1));
    else if (flag === '--close-path-only') options.sizesSection = false;
    else if (flag === '--no-close-path') options.closePath = null;
    else if (flag === '--close-connections') closePath().connections = parseCount(value(), '--close-connections', 1000);
    else if (flag === '--close-repeats') closePath().repeats = parseCount(value(), '--close-repeats', 1);
    else if (flag === '--burst-rate') closePath().burstRate = parseCount(value(), '--burst-rate', 1000);
    else if (flag === '--burst-seconds') closePath().burstSeconds = parseCount(value(), '--burst-seconds', 1);
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write(
        fs
          .readFileSync(__filename, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('//'))
          .map((l) => l.slice(3))
          .join('\n') + '\n',
      );
      process.exit(0);
    } else throw new Error(`unknown flag ${argv[i]}`);
  }
  return options;
}

async function which(command: string): Promise<string | null> {
  try {
    return (await run('sh', ['-c', `command -v "$1"`, 'sh', command])).stdout.trim() || null;
  } catch {
    return null;
  }
}

async function firstLine(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(command, args);
    return (stdout || stderr).split('\n')[0].trim();
  } catch {
    return `${command}: unknown version`;
  }
}

function exitOf(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? (child.signalCode as string));
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal as string))));
}

async function countStates(ns: NetworkNamespace): Promise<{ all: StateCounts; watched: StateCounts }> {
  const count = (text: string) => {
    const counts: StateCounts = {};
    for (const line of text.split('\n')) {
      const state = line.slice(0, line.indexOf(' '));
      if (state) counts[state] = (counts[state] ?? 0) + 1;
    }
    return counts;
  };
  const all = await ns.exec('ss', ['-Htan']);
  const watched = await ns.exec('ss', ['-Htan', '( sport = :80 )', 'dst', WATCH_CIDR]);
  return { all: count(all.stdout), watched: count(watched.stdout) };
}

/** Active TIME-WAIT objects in the whole kernel (all namespaces), from /proc/slabinfo. */
function timeWaitObjects(): number {
  try {
    let total = 0;
    for (const line of fs.readFileSync('/proc/slabinfo', 'utf8').split('\n')) {
      const match = /^tw_sock_TCP(?:v6)?\s+(\d+)/.exec(line);
      if (match) total += Number(match[1]);
    }
    return total;
  } catch {
    return NaN;
  }
}

/**
 * A deleted namespace's TIME-WAIT sockets are purged asynchronously, and until then they stay in the
 * established hash that every dump walks: wait for them to go before the next size.
 */
async function waitForTimeWaitPurge(baseline: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  let objects = timeWaitObjects();
  while (Number.isFinite(objects) && objects > baseline + 2000 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    objects = timeWaitObjects();
  }
  log(`kernel TIME-WAIT objects after deleting the namespace: ${objects} (before the run: ${baseline})`);
}

const NAMESPACE_PREFIX = 'sockmon-bench-';
let current: NetworkNamespace | undefined;

async function runSize(size: number, options: Options, nodeExporter: string | null, twBaseline: number): Promise<SizeResult> {
  const plan: PopulationPlan = planPopulation(size);
  log(`size ${size}: population plan\n${populationTable(plan.classes)}`);
  const ns = new NetworkNamespace(NAMESPACE_PREFIX);
  current = ns;
  try {
    await ns.create(NAMESPACE_ADDRESSES, [
      `net.ipv4.tcp_max_tw_buckets=${Math.max(262144, 2 * size)}`,
      'net.ipv4.ip_local_port_range=1024 9999', // ephemeral ports (the scrapes' own) stay clear of loadgen's 10000+
      'net.ipv4.tcp_tw_reuse=1', // a refresh re-makes client-side TIME-WAIT 4-tuples (the default 2 is for 127/8 only)
    ]);
    const config: WorkerConfig = {
      rounds: options.rounds,
      warmup: options.warmup,
      concurrent: options.concurrent,
      sockmonPort: 19469,
      nodeExporterPort: 19100,
      nodeExporter,
      loadgen: LOADGEN,
      churn: plan.churn,
      refreshAgeSeconds: options.refreshAge,
    };
    const worker = ns.spawn(process.execPath, [WORKER, JSON.stringify(config)], ['pipe', 'pipe', 'inherit']);
    const workerLine = lines(worker, 'bench worker');
    await workerLine('READY', 60_000);
    log(`size ${size}: sockmon serve${nodeExporter ? ' and node_exporter' : ''} running in ${ns.name}`);

    const started = Date.now();
    const holders = plan.hold.map((job) => ns.spawn(LOADGEN, ['hold', '1200', job]));
    for (const [i, holder] of holders.entries())
      log(`size ${size}: holder ${i + 1}/${holders.length}: ${await lines(holder, `loadgen hold ${i + 1}`)('ready', 60_000)}`);
    const churners = plan.churn.map((jobs) => ns.spawn(LOADGEN, ['churn', '50', ...jobs]));
    const done = await Promise.all(churners.map((churner, i) => lines(churner, `loadgen churn ${i + 1}`)('done', 60_000)));
    const codes = await Promise.all(churners.map(exitOf));
    if (codes.some((code) => code !== 0)) throw new Error(`loadgen churn exited with ${codes.join(', ')}`);
    done.forEach((line, i) => log(`size ${size}: churn ${i + 1}: ${line}`));
    const buildSeconds = (Date.now() - started) / 1000;

    const before = await countStates(ns);
    log(
      `size ${size}: built in ${buildSeconds.toFixed(1)} s; counted ${Object.entries(before.all)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ')}; timing...`,
    );
    worker.stdin?.write(`go ${started}\n`);
    const result = JSON.parse(await workerLine('RESULT', 15 * 60_000)) as WorkerResult;
    const after = await countStates(ns);
    worker.stdin?.end('quit\n');
    await Promise.race([exitOf(worker), new Promise((resolve) => setTimeout(resolve, 10_000))]);
    if (result.oldestAgeSeconds > 58)
      log(
        `size ${size}: WARNING: the measurements ended ${result.oldestAgeSeconds.toFixed(0)} s after the oldest TIME-WAIT socket was made: some may have expired`,
      );
    return { size, classes: plan.classes, buildSeconds, before, after, worker: result };
  } finally {
    await ns.delete();
    current = undefined;
    await waitForTimeWaitPurge(twBaseline);
  }
}

const CLOSE_PATH_HEADING = '### Close path';

/** The close-path section, in a fresh namespace of its own (bench/close-path.ts). */
async function runClosePathSection(closePath: ClosePathOptions): Promise<string> {
  const tools = await buildClosePathTools(__dirname);
  const ns = new NetworkNamespace(NAMESPACE_PREFIX);
  current = ns;
  try {
    await ns.create(NAMESPACE_ADDRESSES, ['net.ipv4.ip_local_port_range=1024 65000']);
    const section = closePathSection(await runClosePath(ns, tools, closePath));
    if (!section.startsWith(CLOSE_PATH_HEADING)) throw new Error('close-path section heading changed');
    process.stderr.write('\n' + section + '\n');
    return section;
  } finally {
    await ns.delete();
    current = undefined;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), process.env);
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (network namespaces)');
  for (const tool of ['ip', 'ss', 'gcc']) if (!(await which(tool))) throw new Error(`${tool} not found (install iproute2 / gcc)`);
  let nodeExporter: string | null = null;
  if (options.nodeExporter) {
    for (const candidate of NODE_EXPORTER_CANDIDATES) nodeExporter ??= await which(candidate);
    if (!nodeExporter) log('node_exporter not found (apt-get install prometheus-node-exporter): leaving it out');
  }
  if (!fs.existsSync(path.join(ROOT, 'build', 'Release', 'sockmon.node'))) throw new Error('the addon is not built: run `npm run build` first');
  const hostAddresses = hostTestAddresses();
  if (hostAddresses.length > 0) throw new Error(`the host namespace has benchmark-range addresses, refusing to run:\n${hostAddresses.join('\n')}`);

  await run('gcc', ['-O2', '-Wall', '-o', LOADGEN, LOADGEN_SOURCE]);
  for (const name of await clearStale(NAMESPACE_PREFIX)) log(`deleted stale namespace ${name}`);

  const machine: Machine = {
    cpus: os.availableParallelism(), // what nproc prints
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    kernel: os.release(),
    node: process.version,
    ss: await firstLine('ss', ['-V']),
    nodeExporter: nodeExporter ? await firstLine(nodeExporter, ['--version']) : 'node_exporter not installed',
    date: new Date().toISOString(),
  };

  const twBaseline = timeWaitObjects();
  const results: SizeResult[] = [];
  for (const size of options.sizesSection ? options.sizes : []) {
    const result = await runSize(size, options, nodeExporter, twBaseline);
    results.push(result);
    process.stderr.write('\n' + sizeSection(result) + '\n');
  }
  const closePath = options.closePath ? await runClosePathSection(options.closePath) : '';

  let report = options.sizesSection ? formatReport(machine, options, results) + '\n' + closePath : closePath;
  if (!options.sizesSection && options.out && fs.existsSync(options.out)) {
    // Keep the sizes' sections of the file; replace its close-path section (always the last).
    const previous = fs.readFileSync(options.out, 'utf8');
    const at = previous.indexOf(CLOSE_PATH_HEADING);
    report = (at >= 0 ? previous.slice(0, at) : previous.trimEnd() + '\n\n') + closePath;
  }
  process.stdout.write('\n' + report);
  if (options.out) {
    fs.writeFileSync(options.out, report);
    log(`wrote ${path.relative(process.cwd(), options.out) || options.out}`);
  }
  const leftover = hostTestAddresses();
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith(NAMESPACE_PREFIX));
  log(`cleanup check: host addresses in 203.0.113/198.51.100: ${leftover.length}; sockmon-bench namespaces left: ${namespaces.length}`);
}

// Whatever happens, the namespace (and everything running in it) goes.
process.on('exit', () => current?.deleteSync());
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    current?.deleteSync();
    process.exit(code);
  });
}

main().catch((error: Error) => {
  log(`failed: ${error.message}`);
  process.exitCode = 1;
  current?.deleteSync();
});
