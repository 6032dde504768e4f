// `npm run bench:start` (also the first part of `npm run bench`; no root needed): what starting sockmon and keeping
// it running cost, against Node's own floor measured in the same run (issue 22). Prints a markdown report and
// writes it to bench/startup-results.md.
//
//   --runs 21       start-time runs of each command (interleaved, the first command rotating; medians; 0: no start part)
//   --rss-runs 3    idle-RSS runs (sockmon serve and the Node floor side by side; medians)
//   --peers 50000   distinct peers that come and go for the RSS at the peer cap (0: leave that part out)
//   --node-options "..."   NODE_OPTIONS for sockmon serve and the Node floor instead of the unit's (to try V8 flags)
//   --compare "..."        at the peer cap, also a serve with these NODE_OPTIONS, side by side (repeatable)
//   --out FILE | --no-out
import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { exited, startServe } from '../test/helpers/cli';
import { CLI, UNIT_NODE_OPTIONS } from '../test/helpers/paths';
import { freePort } from '../test/helpers/ports';
import { median } from './protocol';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const log = (message: string) => process.stderr.write(`bench:start: ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Options {
  runs: number;
  rssRuns: number;
  peers: number;
  out: string | null;
  nodeOptions: string;
  compare: string[];
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    runs: 21,
    rssRuns: 3,
    peers: 50_000,
    out: path.join(ROOT, 'bench', 'startup-results.md'),
    nodeOptions: UNIT_NODE_OPTIONS,
    compare: [],
  };
  const count = (flag: string, text: string | undefined, min: number) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`${flag}: expected a whole number of at least ${min}, got "${text}"`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--runs') options.runs = count(flag, argv[++i], 0);
    else if (flag === '--rss-runs') options.rssRuns = count(flag, argv[++i], 1);
    else if (flag === '--peers') options.peers = count(flag, argv[++i], 0);
    else if (flag === '--out') options.out = path.resolve(argv[++i] ?? '');
    else if (flag === '--no-out') options.out = null;
    else if (flag === '--node-options') options.nodeOptions = argv[++i] ?? '';
    else if (flag === '--compare') options.compare.push(argv[++i] ?? '');
    else throw new Error(`unknown flag ${flag}`);
  }
  return options;
}

/** The environment without NODE_OPTIONS, or with the given ones: what a shell user or the unit starts node with. */
function nodeEnv(nodeOptions?: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return nodeOptions === undefined ? env : { ...env, NODE_OPTIONS: nodeOptions };
}

/** A listener on 127.0.0.1 with `count` established connections to it: something real for a snapshot to dump. */
async function holdConnections(count: number): Promise<{ port: number; close: () => void }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => accepted.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const clients = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1');
          socket.once('connect', () => resolve(socket)).once('error', reject);
        }),
    ),
  );
  return {
    port,
    close: () => {
      for (const socket of [...clients, ...accepted]) socket.destroy();
      server.close();
    },
  };
}

interface Command {
  name: string;
  file: string;
  args: string[];
}

/** Wall time of one whole command, from spawn to exit, in ms; a non-zero exit is an error. */
async function timeCommand(command: Command): Promise<number> {
  const started = process.hrtime.bigint();
  await run(command.file, command.args, { env: nodeEnv(), maxBuffer: 64 << 20 });
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function startTimes(commands: Command[], runs: number): Promise<number[][]> {
  const times = commands.map(() => [] as number[]);
  for (const command of commands) await timeCommand(command); // warm-up: the page cache, not measured
  for (let round = 0; round < runs; round++)
    for (let k = 0; k < commands.length; k++) {
      const i = (round + k) % commands.length;
      times[i].push(await timeCommand(commands[i]));
    }
  return times;
}

interface Memory {
  rssKb: number;
  anonKb: number;
  fileKb: number;
  hwmKb: number;
}

function memoryOf(pid: number): Memory {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssKb: kb('VmRSS'), anonKb: kb('RssAnon'), fileKb: kb('RssFile') + kb('RssShmem'), hwmKb: kb('VmHWM') };
}

const SCRAPES = 5;
/**
 * RSS is read 5 s after the scrapes, and again 30 s after: V8's memory reducer, which gives back the heap pages a
 * scrape grew, runs once the process has been idle for a while (15-40 s after the last scrape, measured); Prometheus scrapes every 15-60 s.
 */
const SETTLE_MS = [5000, 60_000];

async function scrapeText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

function stop(child: ChildProcess): Promise<number | null> {
  child.kill('SIGTERM');
  return exited(child);
}

/** One idle-RSS run: `sockmon serve` (a few scrapes, then idle) and the Node floor, side by side; RSS at each SETTLE_MS. */
async function idleRun(port: number, nodeOptions: string): Promise<{ serve: Memory; floor: Memory }[]> {
  const env = nodeEnv(nodeOptions);
  const floor = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e3)'], { env, stdio: 'ignore' });
  const served = await startServe(['--cidr', '127.0.0.0/8', '--port', String(port)], (a) => spawn(process.execPath, [CLI, ...a], { env }));
  try {
    for (let i = 0; i < SCRAPES; i++) {
      await scrapeText(`${served.url}/metrics`);
      await sleep(200);
    }
    const samples: { serve: Memory; floor: Memory }[] = [];
    let slept = 0;
    for (const settle of SETTLE_MS) {
      await sleep(settle - slept);
      slept = settle;
      samples.push({ serve: memoryOf(served.child.pid as number), floor: memoryOf(floor.pid as number) });
    }
    return samples;
  } finally {
    await stop(served.child);
    floor.kill('SIGKILL');
  }
}

/** `peers` distinct peers open and reset a connection each while sockmon serve is scraped every second, as test/metrics/bounded.test.ts does. */
interface CapResult {
  nodeOptions: string;
  memory: Memory;
  labels: number;
  closed: number;
  /** With the cap full: whole scrapes (HTTP), and the sockmon_scrape_duration_seconds they report. */
  scrapeMs: number[];
  durationMs: number[];
}

const CAP_SCRAPES = 15;

/**
 * `peers` distinct peers open and reset a connection each while sockmon serve is scraped every second, as
 * test/metrics/bounded.test.ts does; one serve per NODE_OPTIONS, side by side on the same peers (the same close
 * events), scraped in turn, so that V8 flags are compared under the same load.
 */
async function peerCapRun(peers: number, nodeOptions: string[]): Promise<CapResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmon-bench-start-'));
  const serves: Awaited<ReturnType<typeof startServe>>[] = [];
  try {
    const generator = path.join(dir, 'distinct_peers');
    execFileSync('gcc', ['-O2', '-o', generator, path.join(ROOT, 'test', 'fixtures', 'distinct_peers.c')]);
    const port = await freePort();
    for (const options of nodeOptions)
      serves.push(
        await startServe(['--cidr', '127.64.0.0/10', '--port', String(port), '--retention', '10m'], (a) =>
          spawn(process.execPath, [CLI, ...a], { env: nodeEnv(options) }),
        ),
      );
    const results: CapResult[] = nodeOptions.map((options) => ({
      nodeOptions: options,
      memory: { rssKb: NaN, anonKb: NaN, fileKb: NaN, hwmKb: NaN },
      labels: 0,
      closed: 0,
      scrapeMs: [],
      durationMs: [],
    }));
    const scrapeAll = async (record: boolean) => {
      const bodies: string[] = [];
      for (const [i, served] of serves.entries()) {
        const started = process.hrtime.bigint();
        const body = await scrapeText(`${served.url}/metrics`);
        if (record) {
          results[i].scrapeMs.push(Number(process.hrtime.bigint() - started) / 1e6);
          results[i].durationMs.push(Number(/^sockmon_scrape_duration_seconds (\S+)$/m.exec(body)?.[1]) * 1000);
        }
        bodies.push(body);
      }
      return bodies;
    };
    const making = run(generator, ['127.0.0.1', String(port), '127.64.0.1', String(peers), '120'], { timeout: 150_000 });
    let generating = true;
    void making.finally(() => (generating = false)).catch(() => {});
    while (generating) {
      await scrapeAll(false);
      await sleep(1000);
    }
    const made = Number(/made=(\d+)/.exec((await making).stdout)?.[1]);
    const closedOf = (body: string) => [...body.matchAll(/^sockmon_tcp_connections_closed_total\{[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    // The close events of the last connections may still be on their way: up to 10 s for the counters to reach `made`.
    let bodies = await scrapeAll(false);
    for (let i = 0; i < 20 && bodies.some((body) => closedOf(body) < made); i++) {
      await sleep(500);
      bodies = await scrapeAll(false);
    }
    // Scrape time with the cap full (257 peer labels, each with its histograms), the serves in turn.
    for (let i = 0; i < CAP_SCRAPES; i++) await scrapeAll(true);
    for (const [i, served] of serves.entries()) {
      results[i].memory = memoryOf(served.child.pid as number);
      results[i].closed = closedOf(bodies[i]);
      results[i].labels = new Set([...bodies[i].matchAll(/^sockmon_tcp_connections_closed_total\{[^}]*peer="([^"]*)"/gm)].map((m) => m[1])).size;
    }
    return results;
  } finally {
    await Promise.all(serves.map((served) => stop(served.child)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const mb = (kb: number) => (kb / 1024).toFixed(1);
const fixed = (n: number) => n.toFixed(n >= 100 ? 0 : 1);

/** The start-time table and ratio: the commands interleaved, so that a noisy neighbour slows all of them alike. */
async function startSection(commands: Command[], runs: number, out: (line?: string) => void): Promise<void> {
  log(`start times: ${runs} runs of each of ${commands.length} commands (50 connections held)`);
  const times = await startTimes(commands, runs);
  out(`Start: whole command, spawn to exit, ${runs} runs each, interleaved; 50 established connections on the port.`);
  out();
  out('| command | median ms | min ms | max ms | / node -e 0 |');
  out('| --- | ---: | ---: | ---: | ---: |');
  const floor = median(times[0]);
  for (const [i, command] of commands.entries()) {
    const [mid, min, max] = [median(times[i]), Math.min(...times[i]), Math.max(...times[i])];
    out(`| \`${command.name}\` | ${fixed(mid)} | ${fixed(min)} | ${fixed(max)} | ${(mid / floor).toFixed(2)}x |`);
  }
  const startRatio = median(times[1]) / floor;
  out();
  out(`**start ratio: sockmon snapshot / node -e 0 = ${startRatio.toFixed(2)}x** (target ≤ 1.5x: ${startRatio <= 1.5 ? 'PASS' : 'MISS'})`);
  out();
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const lines: string[] = [];
  const out = (line = '') => lines.push(line);
  out('### Start time and idle memory');
  out();
  out(
    `${os.cpus()[0]?.model.trim()}, ${os.availableParallelism()} CPUs, load ${os.loadavg()[0].toFixed(1)}; node ${process.version}; ${new Date().toISOString()}`,
  );
  out();

  const held = await holdConnections(50);
  try {
    const ssCommand = `ss -Htan '( sport = :${held.port} )'`;
    const commands: Command[] = [
      { name: 'node -e 0', file: process.execPath, args: ['-e', '0'] },
      {
        name: `sockmon snapshot --cidr 127.0.0.0/8 --port ${held.port}`,
        file: process.execPath,
        args: [CLI, 'snapshot', '--cidr', '127.0.0.0/8', '--port', String(held.port)],
      },
      { name: ssCommand, file: 'ss', args: ['-Htan', `( sport = :${held.port} )`] },
      // What yargs alone costs, and the CLI up to its parse (no command run): where the time above node's goes.
      { name: 'node -e "require(\'yargs\')"', file: process.execPath, args: ['-e', `require(${JSON.stringify(require.resolve('yargs'))})`] },
      { name: 'sockmon --version', file: process.execPath, args: [CLI, '--version'] },
    ];
    if (options.runs > 0) await startSection(commands, options.runs, out);

    log(`idle RSS: ${options.rssRuns} runs at once, ${SCRAPES} scrapes, then idle`);
    // The runs at once: RSS does not depend on the CPU, and the memory reducer's wait is long.
    const runs = await Promise.all(Array.from({ length: options.rssRuns }, () => idleRun(held.port, options.nodeOptions)));
    const which = options.nodeOptions === UNIT_NODE_OPTIONS ? "the unit's NODE_OPTIONS" : 'NODE_OPTIONS';
    out(`Idle RSS under ${which} (\`${options.nodeOptions}\`), ${options.rssRuns} runs, medians; sockmon serve after ${SCRAPES} scrapes.`);
    out();
    out('| process | idle | RSS MB | anonymous MB | file MB |');
    out('| --- | --- | ---: | ---: | ---: |');
    const differences: string[] = [];
    for (const [k, settle] of SETTLE_MS.entries()) {
      const medianOf = (pick: (m: { serve: Memory; floor: Memory }) => number) => median(runs.map((samples) => pick(samples[k])));
      const row = (name: string, of: (m: { serve: Memory; floor: Memory }) => Memory) =>
        out(
          `| ${name} | ${settle / 1000} s | ${mb(medianOf((m) => of(m).rssKb))} | ${mb(medianOf((m) => of(m).anonKb))} | ${mb(medianOf((m) => of(m).fileKb))} |`,
        );
      row("`node -e 'setInterval(()=>{},1e3)'`", (m) => m.floor);
      row('`sockmon serve`', (m) => m.serve);
      const differenceKb = medianOf((m) => m.serve.rssKb - m.floor.rssKb);
      differences.push(
        `**idle RSS ${settle / 1000} s after the scrapes: sockmon serve − node = +${mb(differenceKb)} MB ` +
          `(${medianOf((m) => m.serve.rssKb / m.floor.rssKb).toFixed(2)}x)** (target ≤ +12 MB: ${differenceKb <= 12 * 1024 ? 'PASS' : 'MISS'})`,
      );
    }
    out();
    for (const line of differences) out(line + '  ');
    out();
  } finally {
    held.close();
  }

  if (options.peers > 0) {
    log(`peer cap: ${options.peers} distinct peers, ${1 + options.compare.length} serve(s) side by side`);
    const results = await peerCapRun(options.peers, [options.nodeOptions, ...options.compare]);
    out(
      `At the peer cap: ${options.peers.toLocaleString('en-US')} distinct peers open and reset a connection each, scraped every second ` +
        `(default cap 256); then ${CAP_SCRAPES} scrapes with the cap full${results.length > 1 ? ', the serves side by side and scraped in turn' : ''}; medians.`,
    );
    out();
    out('| NODE_OPTIONS | RSS after MB | peak RSS (VmHWM) MB | peer labels | closes counted | scrape ms | sockmon_scrape_duration_seconds ms |');
    out('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const cap of results)
      out(
        `| \`${cap.nodeOptions}\` | ${mb(cap.memory.rssKb)} | ${mb(cap.memory.hwmKb)} | ${cap.labels} | ${cap.closed} | ${fixed(median(cap.scrapeMs))} | ${fixed(median(cap.durationMs))} |`,
      );
  }

  const report = lines.join('\n') + '\n';
  process.stdout.write('\n' + report);
  if (options.out) {
    fs.writeFileSync(options.out, report);
    log(`wrote ${path.relative(process.cwd(), options.out) || options.out}`);
  }
}

main().catch((error: Error) => {
  log(`failed: ${error.message}`);
  process.exitCode = 1;
});
