// `npm run docs:example` (root): regenerates README.md's `sockmon snapshot` and `/metrics` excerpts from a real
// run. In a private network namespace holding the seed's addresses (the backend 203.0.113.10 and the proxy
// network 203.0.113.96/27, on the namespace's loopback only), `sockmon serve` starts on its defaults, a backend
// on [::]:80 (dual-stack, as Apache's *:80) gets keep-alive connections from three proxy nodes and some one-shot
// requests the backend closes, then `sockmon snapshot` runs and `/metrics` is scraped. The outputs replace what
// sits between README's `<!-- example: snapshot -->` / `<!-- example: metrics -->` and `<!-- /example -->`.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, startServe } from '../test/helpers/cli';
import { NetworkNamespace } from '../test/helpers/netns';
import { runTraffic, TrafficPlan } from './traffic';

const ROOT = path.resolve(__dirname, '..', '..');
const README = path.join(ROOT, 'README.md');
const LISTEN = '127.0.0.1:19469';
/** What the README says it ran to get the /metrics excerpt; `selectMetrics` below does the same filtering. */
const METRICS_COMMAND = "curl -s localhost:19469/metrics | grep '^sockmon_' | grep -v -e _bucket -e _sum";

const plan: TrafficPlan = {
  backend: { host: '203.0.113.10', port: 80, keepAliveTimeoutMs: 5000 },
  proxies: [
    { from: '203.0.113.114', keepAlive: 4, closed: 0 },
    { from: '203.0.113.115', keepAlive: 2, closed: 3 },
    { from: '203.0.113.116', keepAlive: 3, closed: 1 },
  ],
};

interface Example {
  snapshot: string;
  metrics: string;
}

/** The lines `grep '^sockmon_' | grep -v -e _bucket -e _sum` keeps. */
export function selectMetrics(text: string): string {
  const kept = text.split('\n').filter((line) => line.startsWith('sockmon_') && !line.includes('_bucket') && !line.includes('_sum'));
  return kept.join('\n') + '\n';
}

/** Inside the namespace: sockmon serve, the traffic, a snapshot and a scrape. Prints the Example as JSON. */
async function inside(): Promise<void> {
  // sockmon first: the connections the traffic makes are then opened (and some closed) while it watches.
  const served = await startServe([], undefined, LISTEN);
  try {
    const traffic = await runTraffic(plan);
    // The close watcher reads events after a 20 ms pause: 500 ms is ample for the last one-shot's close.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const snapshot = runCli(['snapshot']);
    if (snapshot.status !== 0) throw new Error(`sockmon snapshot: ${snapshot.stderr}`);
    const response = await fetch(`${served.url}/metrics`);
    const metrics = selectMetrics(await response.text());
    await traffic.stop();
    process.stdout.write(JSON.stringify({ snapshot: snapshot.stdout, metrics } satisfies Example));
  } finally {
    served.child.kill('SIGTERM');
  }
}

/** Replaces the fenced block between `<!-- example: NAME -->` and `<!-- /example -->` in `readme`. */
export function replaceExample(readme: string, name: string, body: string): string {
  const pattern = new RegExp(`(<!-- example: ${name} -->\\n)[\\s\\S]*?(<!-- /example -->)`);
  if (!pattern.test(readme)) throw new Error(`README.md has no "<!-- example: ${name} -->" ... "<!-- /example -->" block`);
  return readme.replace(pattern, (_, open: string, close: string) => `${open}\`\`\`\n${body}\`\`\`\n${close}`);
}

async function outside(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('sockmon docs:example: needs root (it builds a private network namespace)\n');
    process.exit(2);
  }
  const ns = await NetworkNamespace.create(['203.0.113.10/32', '203.0.113.96/27'], 'sockmon-docs-');
  process.once('SIGINT', () => {
    ns.deleteSync();
    process.exit(130);
  });
  let example: Example;
  try {
    const { stdout } = await ns.exec(process.execPath, [__filename, '--inside'], 60_000);
    example = JSON.parse(stdout) as Example;
  } finally {
    await ns.delete();
  }
  let readme = readFileSync(README, 'utf8');
  readme = replaceExample(readme, 'snapshot', `$ sockmon snapshot\n${example.snapshot}`);
  readme = replaceExample(readme, 'metrics', `$ ${METRICS_COMMAND}\n${example.metrics}`);
  writeFileSync(README, readme);
  process.stdout.write(`$ sockmon snapshot\n${example.snapshot}\n$ ${METRICS_COMMAND}\n${example.metrics}`);
  process.stdout.write('README.md updated\n');
}

if (require.main === module) {
  (process.argv[2] === '--inside' ? inside() : outside()).catch((error) => {
    process.stderr.write(`sockmon docs:example: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
