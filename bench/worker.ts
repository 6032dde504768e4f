// The in-namespace half of the benchmark (run by run.ts with `ip netns exec`). Starts `sockmon serve` and
// node_exporter, prints "READY", waits for "go" on stdin, runs the warm-up and timed rounds (contenders
// round-robin), prints "RESULT <json>", and on "quit" or the end of stdin stops what it started and exits.
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { IntervalHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseCidr, stateMask, Watch } from '../src/kernel/filter';
import { DumpRequest, loadNative } from '../src/kernel/native';
import { dumpRequest } from '../src/kernel/snapshot';
import { naiveCount, naiveWatch } from './naive-proc';
import { Contender, CONTENDERS, Histogram, median, SS_ARGS, WATCH_CIDR, WATCH_PORT, WorkerConfig, WorkerResult } from './protocol';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'cli.js');
const LISTENER_COST_SAMPLES = 21;
const children = new Set<ChildProcess>();

const log = (message: string) => process.stderr.write(`bench worker: ${message}\n`);

function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  children.add(child);
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (!stopping) log(`${path.basename(command)} exited early (${code ?? signal}): ${stderr.trim()}`);
  });
  return child;
}

let stopping = false;
async function stopChildren(): Promise<void> {
  stopping = true;
  const waits = [...children].map(
    (child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve))),
  );
  for (const child of children) child.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const child of children) child.kill('SIGKILL');
  }, 3000);
  await Promise.all(waits);
  clearTimeout(timer);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      response.on('error', reject);
    });
    request.setTimeout(60_000, () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}

async function waitUntilServing(url: string, child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${url}: the server exited`);
    try {
      if ((await get(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs loadgen to completion; rejects with its stderr if it fails. */
function runLoadgen(loadgen: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(loadgen, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      children.delete(child);
      if (code === 0) resolve();
      else reject(new Error(`loadgen exited with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
}

/** Runs a command to completion, output to /dev/null; resolves with its wall time in ms. */
function timeCommand(command: string, args: string[], timeoutMs = 60_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const ms = performance.now() - started;
      if (code === 0) resolve(ms);
      else reject(new Error(`${command} exited with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
}

function procStatusKb(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : NaN;
}

/** utime and stime of a process in ms (clock ticks of 10 ms). */
function procCpuMs(pid: number): { user: number; sys: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 };
}

/** CPU time of every thread of a process in ms, from schedstat (ns resolution). */
function procCpuPreciseMs(pid: number): number {
  let ns = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread gone
    }
  }
  return ns / 1e6;
}

// Event-loop delay around one call. A fresh histogram each time: a re-enabled one records the whole gap since
// it was disabled as its first sample.
async function startEventLoopDelay(): Promise<IntervalHistogram> {
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  // Let its 1 ms timer run once, so a call that blocks the loop from the start is seen.
  await new Promise((resolve) => setTimeout(resolve, 2));
  return eld;
}

async function stopEventLoopDelay(eld: IntervalHistogram): Promise<Histogram> {
  // One more tick after the call: that sample carries any time the call's completion held the loop.
  await new Promise((resolve) => setTimeout(resolve, 2));
  eld.disable();
  return { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6, samples: eld.count };
}

/** Per-call histograms cannot be merged exactly: median of the p50s, the highest p99 and max (conservative). */
function mergeHistograms(list: Histogram[]): Histogram {
  return {
    p50: median(list.map((h) => h.p50)),
    p99: Math.max(...list.map((h) => h.p99)),
    max: Math.max(...list.map((h) => h.max)),
    samples: list.reduce((sum, h) => sum + h.samples, 0),
  };
}

const metric = (body: string, name: string) => {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
  return match ? Number(match[1]) : NaN;
};

function sumSeries(body: string, name: string): number {
  let sum = 0;
  for (const match of body.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))) sum += Number(match[1]);
  return sum;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]) as WorkerConfig;
  const lines = readline.createInterface({ input: process.stdin });
  const input: string[] = [];
  let waiter: (() => void) | undefined;
  let stdinEnded = false;
  lines.on('line', (line) => {
    input.push(line.trim());
    waiter?.();
  });
  lines.on('close', () => {
    // The driver is gone (or done): stop what we started, whatever phase we are in.
    stdinEnded = true;
    waiter?.();
    stopAndExit(0)();
  });
  const nextLine = async (): Promise<string> => {
    while (input.length === 0 && !stdinEnded) await new Promise<void>((resolve) => (waiter = resolve));
    return input.shift() ?? 'quit';
  };

  const sockmonUrl = `http://127.0.0.1:${config.sockmonPort}/metrics`;
  const nodeExporterUrl = `http://127.0.0.1:${config.nodeExporterPort}/metrics`;
  const sockmon = start(process.execPath, [CLI, 'serve', '--web.listen-address', `127.0.0.1:${config.sockmonPort}`, '--log.level', 'warn']);
  const nodeExporter = config.nodeExporter
    ? start(config.nodeExporter, ['--collector.disable-defaults', '--collector.tcpstat', `--web.listen-address=127.0.0.1:${config.nodeExporterPort}`])
    : undefined;
  await waitUntilServing(`http://127.0.0.1:${config.sockmonPort}/`, sockmon);
  if (nodeExporter) await waitUntilServing(`http://127.0.0.1:${config.nodeExporterPort}/`, nodeExporter);
  const sockmonPid = sockmon.pid as number;
  const rssStart = procStatusKb(sockmonPid, 'VmRSS');
  const cpuAtReady = procCpuMs(sockmonPid);
  process.stdout.write(`READY ${JSON.stringify({ sockmonPid, nodeExporterPid: nodeExporter?.pid ?? null })}\n`);

  // "go <ms since the epoch when the population build started>"
  const [command, builtAt] = (await nextLine()).split(' ');
  if (command !== 'go') {
    await stopChildren();
    return;
  }
  let oldest = Number(builtAt);
  // sockmon serve's CPU while the population was made (its close watcher reads a destroy event per socket).
  const cpuAtGo = procCpuMs(sockmonPid);
  const connectionsPerBuild = config.churn.flat().reduce((sum, job) => sum + Number(job.split(',')[6]), 0);
  const buildCpu = { userMs: cpuAtGo.user - cpuAtReady.user, sysMs: cpuAtGo.sys - cpuAtReady.sys, connections: connectionsPerBuild };
  const refreshes = { count: 0, seconds: 0 };
  /** Re-makes the TIME-WAIT population if the next step (taking about `nextMs`) could outlive it. */
  const refreshIfOld = async (nextMs: number) => {
    if (Date.now() - oldest + nextMs <= config.refreshAgeSeconds * 1000) return;
    const started = Date.now();
    await Promise.all(config.churn.map((jobs) => runLoadgen(config.loadgen, ['churn', '50', ...jobs])));
    oldest = started;
    refreshes.count++;
    refreshes.seconds += (Date.now() - started) / 1000;
    log(`re-made the TIME-WAIT population in ${((Date.now() - started) / 1000).toFixed(1)} s (it would have aged past ${config.refreshAgeSeconds} s)`);
  };

  const watch: Watch = { cidrs: [parseCidr(WATCH_CIDR)], ports: [WATCH_PORT], states: ['established', 'time_wait'] };
  const request = dumpRequest(watch);
  // What the listeners cost: the reference is the same dump without them (what a scrape did before), and
  // the listening-table walk alone is the LISTEN request on its own (both families, in parallel, as in a scrape).
  const connectionsRequest = { ...request, listen: undefined };
  const listenOnlyRequest = { states: stateMask(['listen']), sport: request.listen!.sport, bytecode: request.listen!.bytecode };
  // What --idle costs: the same dump with INET_DIAG_INFO (tcp_info) asked for.
  const idleRequest = dumpRequest(watch, { idleBoundsSeconds: [1, 5, 15, 60, 300] });
  const reader = new (loadNative().DiagReader)();
  const naive = naiveWatch(WATCH_CIDR, WATCH_PORT);
  const eldNative: Histogram[] = [];
  const eldNaive: Histogram[] = [];

  const contenders = CONTENDERS.filter((name) => name !== 'node_exporter' || nodeExporter);
  const times: Partial<Record<Contender, number[]>> = Object.fromEntries(contenders.map((name) => [name, []]));
  const seen: WorkerResult['seen'] = { native: [], scrape: NaN, naive: NaN, naiveLines: NaN };
  const listeners: WorkerResult['listeners'] = { count: NaN, queue: NaN, limit: NaN };
  const scrapeCpuTotal = { user: 0, sys: 0 };
  const nativeStats = { recvCalls: [] as number[], bytes: [] as number[], userMs: [] as number[], sysMs: [] as number[], restarts: 0 };

  const measure: Record<Contender, (timed: boolean) => Promise<number>> = {
    async native(timed) {
      const eld = await startEventLoopDelay();
      const cpu = process.cpuUsage();
      const started = performance.now();
      const raw = await reader.dump(request);
      const ms = performance.now() - started;
      const used = process.cpuUsage(cpu);
      const delay = await stopEventLoopDelay(eld);
      if (timed) {
        eldNative.push(delay);
        seen.native.push(raw.scanned);
        nativeStats.recvCalls.push(raw.recvCalls);
        nativeStats.bytes.push(raw.bytes);
        nativeStats.userMs.push(used.user / 1000);
        nativeStats.sysMs.push(used.system / 1000);
        nativeStats.restarts += raw.restarts;
        const sum = (values?: Uint32Array) => Array.from(values ?? [], Number).reduce((a, b) => a + b, 0);
        Object.assign(listeners, { count: raw.listeners?.ports.length ?? 0, queue: sum(raw.listeners?.queues), limit: sum(raw.listeners?.limits) });
      }
      return ms;
    },
    async native_connections() {
      const started = performance.now();
      await reader.dump(connectionsRequest);
      return performance.now() - started;
    },
    async native_listen() {
      const started = performance.now();
      await reader.dump(listenOnlyRequest);
      return performance.now() - started;
    },
    async native_idle() {
      const started = performance.now();
      await reader.dump(idleRequest);
      return performance.now() - started;
    },
    async scrape(timed) {
      const cpu = procCpuMs(sockmonPid);
      const started = performance.now();
      const { status, body } = await get(sockmonUrl);
      const ms = performance.now() - started;
      const used = procCpuMs(sockmonPid);
      if (timed) {
        scrapeCpuTotal.user += used.user - cpu.user;
        scrapeCpuTotal.sys += used.sys - cpu.sys;
      }
      if (status !== 200 || metric(body, 'sockmon_up') !== 1) throw new Error(`sockmon scrape failed: ${status}`);
      seen.scrape = sumSeries(body, 'sockmon_tcp_connections');
      return ms;
    },
    ss: () => timeCommand('ss', SS_ARGS),
    snapshot: () => timeCommand(process.execPath, [CLI, 'snapshot', '--json']),
    async node_exporter() {
      const started = performance.now();
      const { status, body } = await get(nodeExporterUrl);
      const ms = performance.now() - started;
      if (status !== 200 || !body.includes('node_tcp_connection_states')) throw new Error(`node_exporter scrape failed: ${status}`);
      seen.nodeExporter = {
        established: metric(body, 'node_tcp_connection_states\\{state="established"\\}'),
        timeWait: metric(body, 'node_tcp_connection_states\\{state="time_wait"\\}'),
      };
      return ms;
    },
    async naive(timed) {
      const eld = await startEventLoopDelay();
      const started = performance.now();
      const result = naiveCount(naive);
      const ms = performance.now() - started;
      const delay = await stopEventLoopDelay(eld);
      if (timed) eldNaive.push(delay);
      seen.naive = result.total;
      seen.naiveLines = result.lines;
      return ms;
    },
  };

  const roundsStarted = performance.now();
  const nodeExporterPid = nodeExporter?.pid;
  let nodeExporterCpuBefore = nodeExporterPid ? procCpuMs(nodeExporterPid) : undefined;
  const rssRounds: number[] = [];
  let lastRoundMs = 0;
  for (let round = -config.warmup; round < config.rounds; round++) {
    await refreshIfOld(Math.max(5000, 1.5 * lastRoundMs));
    if (round === 0) {
      nodeExporterCpuBefore = nodeExporterPid ? procCpuMs(nodeExporterPid) : undefined;
    }
    const first = ((round % contenders.length) + contenders.length) % contenders.length;
    const order = [...contenders.slice(first), ...contenders.slice(0, first)];
    const roundStarted = performance.now();
    for (const name of order) {
      const ms = await measure[name](round >= 0);
      if (round >= 0) times[name]?.push(ms);
    }
    lastRoundMs = performance.now() - roundStarted;
    if (round >= 0) rssRounds.push(procStatusKb(sockmonPid, 'VmRSS'));
    log(`${round < 0 ? 'warm-up' : `round ${round + 1}/${config.rounds}`} took ${((performance.now() - roundStarted) / 1000).toFixed(1)} s`);
  }
  const nodeExporterCpuAfter = nodeExporterPid ? procCpuMs(nodeExporterPid) : undefined;
  const roundsSeconds = (performance.now() - roundsStarted) / 1000;
  const scrapes = config.rounds;
  const scrapeCpu = { userMs: scrapeCpuTotal.user / scrapes, sysMs: scrapeCpuTotal.sys / scrapes };
  const nodeExporterCpu =
    nodeExporterCpuBefore && nodeExporterCpuAfter
      ? { userMs: (nodeExporterCpuAfter.user - nodeExporterCpuBefore.user) / scrapes, sysMs: (nodeExporterCpuAfter.sys - nodeExporterCpuBefore.sys) / scrapes }
      : undefined;

  // What the listeners cost, with less noise than one sample per round: sets of dumps run back to back.
  const timeDump = async (dumpRequest: DumpRequest) => {
    const started = performance.now();
    await reader.dump(dumpRequest);
    return performance.now() - started;
  };
  const emptyRequest = { states: 0, sport: 0, bytecode: new Uint8Array() };
  const cost = {
    reference: [] as number[],
    withListeners: [] as number[],
    added: [] as number[],
    walk: [] as number[],
    empty: [] as number[],
    noise: [] as number[],
  };
  await refreshIfOld(Math.max(5000, 4 * LISTENER_COST_SAMPLES * median(times.native ?? [0])));
  for (let i = 0; i < LISTENER_COST_SAMPLES; i++) {
    const set: Record<string, number> = {};
    const order = [
      ['reference', connectionsRequest],
      ['withListeners', request],
      ['walk', listenOnlyRequest],
      ['empty', emptyRequest],
      ['again', connectionsRequest],
    ] as const;
    for (const [name, dumpRequest] of i % 2 ? [...order].reverse() : order) set[name] = await timeDump(dumpRequest);
    cost.reference.push(set.reference);
    cost.withListeners.push(set.withListeners);
    cost.walk.push(set.walk);
    cost.empty.push(set.empty);
    cost.noise.push(Math.abs(set.reference - set.again));
    cost.added.push(set.withListeners - set.reference);
  }
  const listenerCost: WorkerResult['listenerCost'] = {
    samples: LISTENER_COST_SAMPLES,
    referenceMs: median(cost.reference),
    withListenersMs: median(cost.withListeners),
    addedMs: median(cost.added),
    walkMs: median(cost.walk),
    emptyMs: median(cost.empty),
    noiseMs: median(cost.noise),
  };

  // What live reuse (the live data-segments histogram) costs a scrape: the dump sockmon serve makes by
  // default (close watcher on: every live state), with and without tcp_info bucketed by data segments, in
  // back-to-back sets (order reversed every other set). Wall time and this process's CPU (the dump's threads
  // included): on a shared machine the CPU time is the steadier figure.
  const serveRequest = dumpRequest(watch, { liveStates: true });
  const liveRequest = dumpRequest(watch, { liveStates: true, liveSegments: true });
  const timeDumpCpu = async (dumpRequest: DumpRequest) => {
    const cpu = process.cpuUsage();
    const ms = await timeDump(dumpRequest);
    const used = process.cpuUsage(cpu);
    return { ms, cpuMs: (used.user + used.system) / 1000 };
  };
  const live = {
    reference: [] as number[],
    withLive: [] as number[],
    added: [] as number[],
    noise: [] as number[],
    cpuReference: [] as number[],
    cpuAdded: [] as number[],
  };
  await refreshIfOld(Math.max(5000, 3 * LISTENER_COST_SAMPLES * median(times.native ?? [0])));
  for (let i = 0; i < LISTENER_COST_SAMPLES; i++) {
    const order = [
      ['reference', serveRequest],
      ['withLive', liveRequest],
      ['again', serveRequest],
    ] as const;
    const set: Record<string, { ms: number; cpuMs: number }> = {};
    for (const [name, request] of i % 2 ? [...order].reverse() : order) set[name] = await timeDumpCpu(request);
    live.reference.push(set.reference.ms);
    live.withLive.push(set.withLive.ms);
    live.added.push(set.withLive.ms - set.reference.ms);
    live.noise.push(Math.abs(set.reference.ms - set.again.ms));
    live.cpuReference.push(set.reference.cpuMs);
    live.cpuAdded.push(set.withLive.cpuMs - set.reference.cpuMs);
  }
  const liveReuseCost: WorkerResult['liveReuseCost'] = {
    samples: LISTENER_COST_SAMPLES,
    referenceMs: median(live.reference),
    withLiveMs: median(live.withLive),
    addedMs: median(live.added),
    noiseMs: median(live.noise),
    cpuReferenceMs: median(live.cpuReference),
    cpuAddedMs: median(live.cpuAdded),
  };

  // Where ss spends its time: one more run under bash's `time` (wall, user, kernel seconds).
  const ssTimes = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', ['-c', 'TIMEFORMAT="%3R %3U %3S"; time ss "$@" > /dev/null', 'bash', ...SS_ARGS], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', () => resolve(stderr.trim().split('\n').pop() ?? ''));
  });
  const [ssReal, ssUser, ssSys] = ssTimes.split(' ').map((x) => Number(x) * 1000);

  // Shared dump: one scrape vs `concurrent` scrapes fired at once, alternating, after one untimed burst.
  const burst = async (n: number) => {
    const cpu = procCpuPreciseMs(sockmonPid);
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: n }, () => get(sockmonUrl)));
    const ms = performance.now() - started;
    const cpuMs = procCpuPreciseMs(sockmonPid) - cpu;
    if (answers.some((a) => a.status !== 200)) throw new Error('a concurrent scrape failed');
    const dumps = new Set(answers.map((a) => metric(a.body, 'sockmon_scrape_duration_seconds'))).size;
    return { ms, cpuMs, dumps };
  };
  await refreshIfOld(Math.max(5000, 1.5 * lastRoundMs));
  await burst(config.concurrent);
  const singles: Awaited<ReturnType<typeof burst>>[] = [];
  const bursts: Awaited<ReturnType<typeof burst>>[] = [];
  for (let i = 0; i < 3; i++) {
    singles.push(await burst(1));
    bursts.push(await burst(config.concurrent));
  }

  const spawnTrue: number[] = [];
  for (let i = 0; i < 5; i++) spawnTrue.push(await timeCommand('true', []));

  const result: WorkerResult = {
    times,
    roundsSeconds,
    refreshes,
    oldestAgeSeconds: (Date.now() - oldest) / 1000,
    seen,
    native: {
      recvCalls: median(nativeStats.recvCalls),
      bytes: median(nativeStats.bytes),
      userMs: median(nativeStats.userMs),
      sysMs: median(nativeStats.sysMs),
      restarts: nativeStats.restarts,
    },
    listeners,
    listenerCost,
    liveReuseCost,
    eventLoop: { native: mergeHistograms(eldNative), naive: mergeHistograms(eldNaive) },
    rss: { startKb: rssStart, rounds: rssRounds, endKb: procStatusKb(sockmonPid, 'VmRSS'), hwmKb: procStatusKb(sockmonPid, 'VmHWM') },
    nodeExporterCpu,
    ssCpu: { realMs: ssReal, userMs: ssUser, sysMs: ssSys },
    nodeExporterRssKb: nodeExporter ? procStatusKb(nodeExporter.pid as number, 'VmRSS') : undefined,
    scrapeCpu,
    buildCpu,
    concurrency: {
      n: config.concurrent,
      singleMs: median(singles.map((s) => s.ms)),
      concurrentMs: median(bursts.map((b) => b.ms)),
      singleCpuMs: median(singles.map((s) => s.cpuMs)),
      concurrentCpuMs: median(bursts.map((b) => b.cpuMs)),
      dumpsPerBurst: Math.max(...bursts.map((b) => b.dumps)),
    },
    spawnTrueMs: median(spawnTrue),
  };
  reader.close();
  agent.destroy();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);

  // Stay up (sockmon and node_exporter too) until "quit" or the end of stdin.
  while ((await nextLine()) !== 'quit');
  await stopChildren();
}

let exiting = false;
function stopAndExit(code: number): () => void {
  return () => {
    if (exiting) return;
    exiting = true;
    void stopChildren().then(() => process.exit(code));
  };
}
process.once('SIGTERM', stopAndExit(143));
process.once('SIGINT', stopAndExit(130));

main().then(
  () => process.exit(0),
  (error: Error) => {
    log(`failed: ${error.stack ?? error.message}`);
    void stopChildren().then(() => process.exit(1));
  },
);
