// The seed's lab, for real (root, Debian packages apache2 and haproxy): Apache with KeepAlive On (port 80)
// and Off (port 81) on one backend, behind two HAProxy proxy nodes, 203.0.113.114 with `http-reuse safe` and
// 203.0.113.115 with `http-reuse aggressive`, each with a frontend per backend port; one client mix of
// keep-alive browser sessions and one-shot clients on every frontend; sockmon serve on the backend. All in a
// private network namespace, so the four setups run at once, told apart by (proxy peer, local port). Prints,
// per setup, what sockmon's metrics say. LAB_SECONDS (default 20) of traffic.
import { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSamples, Sample } from '../test/helpers/promtext';
import { NetworkNamespace, waitForOutput } from '../test/helpers/netns';
import type { ClientPlan } from './lab_clients';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'cli.js');
const CLIENTS = path.join(__dirname, 'lab_clients.js');
const SECONDS = Number(process.env.LAB_SECONDS ?? 20);
/** Seconds after the load starts at which the lab also reads live and closed requests per connection. */
const AT = (process.env.LAB_AT ?? '5,30')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const BACKEND = '203.0.113.10';
const PROXIES = [
  { address: '203.0.113.114', reuse: 'safe' },
  { address: '203.0.113.115', reuse: 'aggressive' },
];
const PORTS = [
  { port: 80, keepAlive: 'On' },
  { port: 81, keepAlive: 'Off' },
];

export interface LabRow {
  setup: string;
  peer: string;
  port: number;
  requests: number;
  closed: number;
  opened: number;
  timeWait: number;
  segmentsMedian: number;
  segmentsMean: number;
  idleMedian: number;
  openedPerSecond: number;
  /** Requests per connection at `LAB_AT` seconds after the load started: of the live ESTABLISHED connections
   *  then (sum / count of sockmon_tcp_connection_live_data_segments_in) and of those closed since the start. */
  at: { seconds: number; live: number; closed: number }[];
  /** At the end of the load: the live connections' requests per connection. */
  liveMean: number;
}

function apacheConfig(dir: string): string {
  return `ServerRoot /usr/lib/apache2
ServerName lab
PidFile ${dir}/apache.pid
Mutex file:${dir}
ErrorLog ${dir}/apache-error.log
LogLevel warn
LoadModule mpm_event_module modules/mod_mpm_event.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule dir_module modules/mod_dir.so
DirectoryIndex index.html
User www-data
Group www-data
DocumentRoot ${dir}/htdocs
<Directory ${dir}/htdocs>
  Require all granted
</Directory>
KeepAliveTimeout 5
MaxKeepAliveRequests 100
${PORTS.map(({ port, keepAlive }) => `Listen ${BACKEND}:${port}\n<VirtualHost ${BACKEND}:${port}>\n  KeepAlive ${keepAlive}\n</VirtualHost>`).join('\n')}
`;
}

function haproxyConfig(proxy: (typeof PROXIES)[number]): string {
  return `global
  maxconn 4000
  nbthread 1
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 10s
${PORTS.map(
  ({ port }) => `frontend fe${port}
  bind ${proxy.address}:${8000 + port}
  default_backend be${port}
backend be${port}
  http-reuse ${proxy.reuse}
  server backend ${BACKEND}:${port} source ${proxy.address}
`,
).join('')}`;
}

/** histogram_quantile as Prometheus computes it, on bucket deltas ({le -> cumulative count}). */
export function quantile(q: number, buckets: [number, number][]): number {
  const total = buckets[buckets.length - 1]?.[1] ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  for (let i = 0; i < buckets.length; i++) {
    const [le, count] = buckets[i];
    if (count >= rank) {
      if (le === Infinity) return buckets[i - 1]?.[0] ?? NaN;
      const [lower, below] = i === 0 ? [0, 0] : buckets[i - 1];
      return lower + (le - lower) * ((rank - below) / (count - below));
    }
  }
  return NaN;
}

function delta(before: Sample[], after: Sample[], name: string, labels: Record<string, string>): number {
  const match = (s: Sample) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  return (after.find(match)?.value ?? 0) - (before.find(match)?.value ?? 0);
}

function histogramDelta(before: Sample[], after: Sample[], name: string, labels: Record<string, string>): [number, number][] {
  const les = [...new Set(after.filter((s) => s.name === `${name}_bucket` && s.labels.peer === labels.peer).map((s) => s.labels.le))];
  return les.map((le) => [le === '+Inf' ? Infinity : Number(le), delta(before, after, `${name}_bucket`, { ...labels, le })] as [number, number]);
}

const liveMean = (samples: Sample[], labels: Record<string, string>) => {
  const one = (name: string) => samples.find((s) => s.name === name && s.labels.peer === labels.peer && s.labels.local_port === labels.local_port)?.value ?? 0;
  return one('sockmon_tcp_connection_live_data_segments_in_sum') / one('sockmon_tcp_connection_live_data_segments_in_count');
};
const closedMean = (before: Sample[], after: Sample[], labels: Record<string, string>) =>
  delta(before, after, 'sockmon_tcp_connection_data_segments_in_sum', labels) / delta(before, after, 'sockmon_tcp_connection_data_segments_in_count', labels);

export async function runLab(seconds = SECONDS, log: (line: string) => void = () => {}, at: number[] = AT): Promise<LabRow[]> {
  const ns = await NetworkNamespace.create([`${BACKEND}/32`, ...PROXIES.map((p) => `${p.address}/32`)], 'sockmon-lab-');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-lab-'));
  const children: ChildProcess[] = [];
  try {
    chmodSync(dir, 0o755);
    mkdirSync(path.join(dir, 'htdocs'));
    writeFileSync(path.join(dir, 'htdocs', 'index.html'), 'ok\n');
    writeFileSync(path.join(dir, 'apache2.conf'), apacheConfig(dir));
    children.push(ns.spawn('apache2', ['-f', path.join(dir, 'apache2.conf'), '-DFOREGROUND']));
    for (const proxy of PROXIES) {
      const file = path.join(dir, `haproxy-${proxy.reuse}.cfg`);
      writeFileSync(file, haproxyConfig(proxy));
      children.push(ns.spawn('haproxy', ['-db', '-f', file]));
    }
    const serve = ns.spawn(process.execPath, [CLI, 'serve', '--port', '80', '--port', '81', '--idle', '--web.listen-address', '127.0.0.1:19469']);
    children.push(serve);
    await new Promise((resolve) => serve.stderr?.once('data', resolve));
    const scrape = async () => parseSamples(await ns.fetch('http://127.0.0.1:19469/metrics'));
    // Everything answers through both proxies before the counting starts.
    for (let attempt = 0; ; attempt++) {
      try {
        for (const proxy of PROXIES) for (const { port } of PORTS) await ns.fetch(`http://${proxy.address}:${8000 + port}/`);
        break;
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 7000)); // the warm-up connections time out
    const before = await scrape();
    const plan: ClientPlan = {
      frontends: PROXIES.flatMap((proxy) => PORTS.map(({ port }) => ({ host: proxy.address, port: 8000 + port }))),
      seconds,
      oneShotPerSecond: 20,
      sessionsPerSecond: 2,
      requestsPerSession: 10,
      pauseMs: 200,
    };
    log(`lab: ${seconds} s of traffic on 4 frontends: 20 one-shot clients/s and 2 sessions/s of 10 requests each`);
    const clients = ns.spawn(process.execPath, [CLIENTS, JSON.stringify(plan)]);
    const loadStarted = Date.now();
    const output = waitForOutput(clients, '}', (seconds + 60) * 1000);
    const during: { seconds: number; samples: Sample[] }[] = [];
    for (const t of at.filter((t) => t < seconds)) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, loadStarted + t * 1000 - Date.now())));
      during.push({ seconds: t, samples: await scrape() });
    }
    const atEnd = await (async () => {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, loadStarted + seconds * 1000 - 500 - Date.now())));
      return scrape(); // just before the clients stop: the live pools
    })();
    const made = JSON.parse(await output) as { requests: number[] };
    await new Promise((resolve) => setTimeout(resolve, 8000)); // idle pools close (KeepAliveTimeout 5 s)
    const after = await scrape();
    const rows: LabRow[] = [];
    PROXIES.forEach((proxy, p) =>
      PORTS.forEach(({ port, keepAlive }, k) => {
        const labels = { peer: proxy.address, local_port: String(port) };
        const segments = histogramDelta(before, after, 'sockmon_tcp_connection_data_segments_in', labels);
        const closed = delta(before, after, 'sockmon_tcp_connections_closed_total', labels);
        const opened = delta(before, after, 'sockmon_tcp_connections_opened_total', labels);
        rows.push({
          setup: `KeepAlive ${keepAlive}, http-reuse ${proxy.reuse}`,
          peer: proxy.address,
          port,
          requests: made.requests[p * PORTS.length + k],
          closed,
          opened,
          timeWait: delta(before, after, 'sockmon_tcp_connections_time_wait_total', labels),
          segmentsMedian: quantile(0.5, segments),
          segmentsMean: delta(before, after, 'sockmon_tcp_connection_data_segments_in_sum', labels) / closed,
          idleMedian: quantile(0.5, histogramDelta(before, after, 'sockmon_tcp_connection_idle_before_close_seconds', labels)),
          openedPerSecond: opened / seconds,
          at: during.map(({ seconds: t, samples }) => ({ seconds: t, live: liveMean(samples, labels), closed: closedMean(before, samples, labels) })),
          liveMean: liveMean(atEnd, labels),
        });
      }),
    );
    return rows;
  } finally {
    await ns.delete();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('lab: needs root (a private network namespace)\n');
    process.exit(2);
  }
  const rows = await runLab(SECONDS, (line) => console.log(line));
  console.log(
    '| setup | proxy peer | port | requests made | closed | opened/s | requests/connection (median; mean) | live requests/connection at the end | idle before close, median | time_wait / closed |',
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.setup} | ${r.peer} | ${r.port} | ${r.requests} | ${r.closed} | ${r.openedPerSecond.toFixed(1)} | ${r.segmentsMedian.toFixed(1)}; ${r.segmentsMean.toFixed(1)} | ${r.liveMean.toFixed(1)} | ${r.idleMedian.toFixed(3)} s | ${r.timeWait}/${r.closed} |`,
    );
  }
  console.log('\nrequests per connection after the load started (LAB_AT), live ESTABLISHED / closed since the start:');
  for (const r of rows) console.log(`${r.setup}: ${r.at.map((a) => `${a.seconds} s: live ${a.live.toFixed(1)}, closed ${a.closed.toFixed(1)}`).join('; ')}`);
}

if (require.main === module) {
  void main().catch((error) => {
    process.stderr.write(`lab: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
