// `npm run bench:start` (also the first part of `npm run bench`; no root needed): what starting sockmon and keeping
// it running cost, against Node's own floor measured in the same run (issue 22). Prints a markdown report and
// writes it to bench/startup-results.md.
//
//   --runs 21       start-time runs of each command (interleaved, the first command rotating; medians)
//   --rss-runs 3    idle-RSS runs (sockmon serve and the Node floor side by side; medians)
//   --peers 50000   distinct peers that come and go for the RSS at the peer cap (0: leave that part out)
//   --out FILE | --no-out
import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { exited, startServe } from '../test/helpers/cli';
import { CLI, UNIT_NODE_OPTIONS } from '../test/helpers/paths';
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
}

function parseOptions(argv: string[]): Options {
  const options: Options = { runs: 21, rssRuns: 3, peers: 50_000, out: path.join(ROOT, 'bench', 'startup-results.md') };
  const count = (flag: string, text: string | undefined, min: number) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`${flag}: expected a whole number of at least ${min}, got "${text}"`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--runs') options.runs = count(flag, argv[++i], 3);
    else if (flag === '--rss-runs') options.rssRuns = count(flag, argv[++i], 1);
    else if (flag === '--peers') options.peers = count(flag, argv[++i], 0);
    else if (flag === '--out') options.out = path.resolve(argv[++i] ?? '');
    else if (flag === '--no-out') options.out = null;
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

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
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
const SETTLE_MS = 5000;

async function scrapeText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

function stop(child: ChildProcess): Promise<number | null> {
  child.kill('SIGTERM');
  return exited(child);
}

/** One idle-RSS run: `sockmon serve` (a few scrapes, then a settle time) and the Node floor, side by side. */
async function idleRun(port: number): Promise<{ serve: Memory; floor: Memory }> {
  const env = nodeEnv(UNIT_NODE_OPTIONS);
  const floor = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e3)'], { env, stdio: 'ignore' });
  const served = await startServe(['--cidr', '127.0.0.0/8', '--port', String(port)], (a) => spawn(process.execPath, [CLI, ...a], { env }));
  try {
    for (let i = 0; i < SCRAPES; i++) {
      await scrapeText(`${served.url}/metrics`);
      await sleep(200);
    }
    await sleep(SETTLE_MS);
    return { serve: memoryOf(served.child.pid as number), floor: memoryOf(floor.pid as number) };
  } finally {
    await stop(served.child);
    floor.kill('SIGKILL');
  }
}

/** `peers` distinct peers open and reset a connection each while sockmon serve is scraped every second, as test/metrics/bounded.test.ts does. */
async function peerCapRun(peers: number): Promise<{ memory: Memory; labels: number; closed: number; scrapeMs: number[]; durationMs: number[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmon-bench-start-'));
  try {
    const generator = path.join(dir, 'distinct_peers');
    execFileSync('gcc', ['-O2', '-o', generator, path.join(ROOT, 'test', 'fixtures', 'distinct_peers.c')]);
    const port = await freePort();
    const env = nodeEnv(UNIT_NODE_OPTIONS);
    const served = await startServe(['--cidr', '127.64.0.0/10', '--port', String(port), '--retention', '10m'], (a) =>
      spawn(process.execPath, [CLI, ...a], { env }),
    );
    try {
      const scrapeMs: number[] = [];
      const durationMs: number[] = [];
      const scrape = async () => {
        const started = process.hrtime.bigint();
        const body = await scrapeText(`${served.url}/metrics`);
        scrapeMs.push(Number(process.hrtime.bigint() - started) / 1e6);
        durationMs.push(Number(/^sockmon_scrape_duration_seconds (\S+)$/m.exec(body)?.[1]) * 1000);
        return body;
      };
      const making = run(generator, ['127.0.0.1', String(port), '127.64.0.1', String(peers), '120'], { timeout: 150_000 });
      let generating = true;
      void making.finally(() => (generating = false)).catch(() => {});
      while (generating) {
        await scrape();
        await sleep(1000);
      }
      const made = Number(/made=(\d+)/.exec((await making).stdout)?.[1]);
      let body = '';
      let closed = 0;
      // The close events of the last connections may still be on their way: up to 10 s for the counter to reach `made`.
      for (let i = 0; i < 20; i++) {
        body = await scrape();
        closed = [...body.matchAll(/^sockmon_tcp_connections_closed_total\{[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
        if (closed >= made) break;
        await sleep(500);
      }
      const labels = new Set([...body.matchAll(/^sockmon_tcp_connections_closed_total\{[^}]*peer="([^"]*)"/gm)].map((m) => m[1])).size;
      return { memory: memoryOf(served.child.pid as number), labels, closed, scrapeMs, durationMs };
    } finally {
      await stop(served.child);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const mb = (kb: number) => (kb / 1024).toFixed(1);
const fixed = (n: number) => n.toFixed(n >= 100 ? 0 : 1);

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

  // Start: the commands interleaved, so that a noisy neighbour slows all of them alike.
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
    ];
    log(`start times: ${options.runs} runs of each of ${commands.length} commands (50 connections held)`);
    const times = await startTimes(commands, options.runs);
    out(`Start: whole command, spawn to exit, ${options.runs} runs each, interleaved; 50 established connections on the port.`);
    out();
    out('| command | median ms | min ms | max ms |');
    out('| --- | ---: | ---: | ---: |');
    commands.forEach((command, i) =>
      out(`| \`${command.name}\` | ${fixed(median(times[i]))} | ${fixed(Math.min(...times[i]))} | ${fixed(Math.max(...times[i]))} |`),
    );
    const startRatio = median(times[1]) / median(times[0]);
    out();
    out(`**start ratio: sockmon snapshot / node -e 0 = ${startRatio.toFixed(2)}x** (target ≤ 1.5x: ${startRatio <= 1.5 ? 'PASS' : 'MISS'})`);
    out();

    log(`idle RSS: ${options.rssRuns} runs of ${SCRAPES} scrapes and ${SETTLE_MS / 1000} s settle`);
    const idle: { serve: Memory; floor: Memory }[] = [];
    for (let i = 0; i < options.rssRuns; i++) idle.push(await idleRun(held.port));
    const medianOf = (pick: (m: { serve: Memory; floor: Memory }) => number) => median(idle.map(pick));
    out(`Idle RSS under the unit's NODE_OPTIONS (\`${UNIT_NODE_OPTIONS}\`), ${options.rssRuns} runs side by side, medians;`);
    out(`sockmon serve after ${SCRAPES} scrapes and ${SETTLE_MS / 1000} s idle.`);
    out();
    out('| process | RSS MB | anonymous MB | file MB |');
    out('| --- | ---: | ---: | ---: |');
    out(
      `| \`node -e 'setInterval(()=>{},1e3)'\` | ${mb(medianOf((m) => m.floor.rssKb))} | ${mb(medianOf((m) => m.floor.anonKb))} | ${mb(medianOf((m) => m.floor.fileKb))} |`,
    );
    out(`| \`sockmon serve\` | ${mb(medianOf((m) => m.serve.rssKb))} | ${mb(medianOf((m) => m.serve.anonKb))} | ${mb(medianOf((m) => m.serve.fileKb))} |`);
    const differenceKb = medianOf((m) => m.serve.rssKb - m.floor.rssKb);
    const idleRatio = medianOf((m) => m.serve.rssKb / m.floor.rssKb);
    out();
    out(
      `**idle RSS: sockmon serve − node = +${mb(differenceKb)} MB (${idleRatio.toFixed(2)}x)** (target ≤ +12 MB: ${differenceKb <= 12 * 1024 ? 'PASS' : 'MISS'})`,
    );
    out();
  } finally {
    held.close();
  }

  if (options.peers > 0) {
    log(`peer cap: ${options.peers} distinct peers`);
    const cap = await peerCapRun(options.peers);
    out(`At the peer cap: ${options.peers.toLocaleString('en-US')} distinct peers open and reset a connection each, scraped every second (default cap 256).`);
    out();
    out(
      `RSS after: ${mb(cap.memory.rssKb)} MB, peak (VmHWM): ${mb(cap.memory.hwmKb)} MB; ${cap.labels} peer labels, ${cap.closed} closes counted; ` +
        `scrape p50 ${fixed(median(cap.scrapeMs))} ms, sockmon_scrape_duration_seconds p50 ${fixed(median(cap.durationMs))} ms over ${cap.scrapeMs.length} scrapes`,
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
