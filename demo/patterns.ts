// Keep-alive reuse vs one connection per request, side by side (root): the same request load from three
// proxy nodes against a backend with a 5 s keep-alive timeout, once through keep-alive pools and once with a
// new connection per request, each for PATTERN_SECONDS (default 20) in its own namespace, with sockmon
// serve --idle scraped before and after. Prints what the counters and the idle distribution say.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseSamples, Sample, seriesOf } from '../test/helpers/promtext';
import { NetworkNamespace, waitForOutput } from '../test/helpers/netns';
import type { TrafficPlan } from './traffic';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'cli.js');
const TRAFFIC = path.join(__dirname, 'traffic.js');
const SECONDS = Number(process.env.PATTERN_SECONDS ?? 20);
const PEERS = ['203.0.113.114', '203.0.113.115', '203.0.113.116'];

async function measure(reuse: boolean): Promise<{ before: Sample[]; after: Sample[] }> {
  const ns = await NetworkNamespace.create(['203.0.113.10/32', '203.0.113.96/27'], 'sockmon-patterns-');
  try {
    const serve = ns.spawn(process.execPath, [CLI, 'serve', '--idle', '--web.listen-address', '127.0.0.1:19469']);
    await new Promise((resolve) => serve.stderr?.once('data', resolve));
    const scrape = async () => parseSamples(await ns.fetch('http://127.0.0.1:19469/metrics'));
    const before = await scrape();
    const plan: TrafficPlan = {
      backend: { host: '203.0.113.10', port: 80, keepAliveTimeoutMs: 5000 },
      proxies: PEERS.map((from) => ({ from, keepAlive: reuse ? 4 : 0, closed: 0 })),
      live: { intervalMs: 100, burst: 4, reuse },
    };
    const traffic = ns.spawn(process.execPath, [TRAFFIC, JSON.stringify(plan)]);
    await waitForOutput(traffic, 'ready');
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    traffic.stdin?.write('quiet\n');
    return { before, after: await scrape() };
  } finally {
    await ns.delete();
  }
}

function report(name: string, { before, after }: { before: Sample[]; after: Sample[] }): string[] {
  const delta = (metric: string) => {
    const b = seriesOf(before, metric, ['peer']);
    const a = seriesOf(after, metric, ['peer']);
    return (peer: string) => (a[peer] ?? 0) - (b[peer] ?? 0);
  };
  const opened = delta('sockmon_tcp_connections_opened_total');
  const closed = delta('sockmon_tcp_connections_closed_total');
  const states = seriesOf(after, 'sockmon_tcp_connections', ['peer', 'state']);
  const idle = seriesOf(after, 'sockmon_tcp_connection_idle_seconds_bucket', ['peer', 'le']);
  const les = ['0.05', '0.1', '0.5', '1', '2', '5', '15', '60', '300', '+Inf'];
  return PEERS.map((peer) =>
    [
      name,
      peer,
      opened(peer),
      closed(peer),
      (opened(peer) / SECONDS).toFixed(1),
      states[`${peer} established`] ?? 0,
      states[`${peer} time_wait`] ?? 0,
      les.map((le) => idle[`${peer} ${le}`] ?? 0).join('/'),
    ].join(' | '),
  );
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('patterns: needs root (private network namespaces)\n');
    process.exit(2);
  }
  const reused = await measure(true);
  const perRequest = await measure(false);
  const kernel = (await promisify(execFile)('uname', ['-r'])).stdout.trim();
  console.log(`${SECONDS} s of traffic per pattern, 3 proxies, bursts of 1-4 requests every 100 ms each; kernel ${kernel}`);
  console.log('| pattern | peer | opened | closed | opened/s | ESTAB now | TIME-WAIT now | idle ≤0.05/0.1/0.5/1/2/5/15/60/300/+Inf s |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const row of [...report('keep-alive reused', reused), ...report('one per request', perRequest)]) console.log(`| ${row} |`);
}

void main().catch((error) => {
  process.stderr.write(`patterns: ${(error as Error).message}\n`);
  process.exit(1);
});
