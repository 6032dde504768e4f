// `npm run demo` (root): the seed's setup in a private network namespace — a backend on [::]:80 with a
// 5 s keep-alive timeout, three load-balancer proxy nodes from 203.0.113.96/27 — and `sockmon snapshot`
// refreshing while the proxies open and reuse keep-alive connections, then go quiet and the backend's
// keep-alive timeout turns the idle connections into TIME-WAIT. Cleans up on exit and on Ctrl-C.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { NetworkNamespace, waitForOutput } from '../test/helpers/netns';
import type { TrafficPlan } from './traffic';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'cli.js');
const TRAFFIC = path.join(__dirname, 'traffic.js');
const BUSY_SECONDS = 15;
const TOTAL_SECONDS = Number(process.env.DEMO_SECONDS ?? 45);

const plan: TrafficPlan = {
  backend: { host: '203.0.113.10', port: 80, keepAliveTimeoutMs: 5000 },
  proxies: [
    { from: '203.0.113.114', keepAlive: 4, closed: 0 },
    { from: '203.0.113.115', keepAlive: 2, closed: 3 },
    { from: '203.0.113.116', keepAlive: 3, closed: 0 },
  ],
  live: { intervalMs: 500, burst: 6 },
};

function caption(second: number): string {
  if (second < BUSY_SECONDS) return 'proxies busy: keep-alive connections opened and reused (ESTABLISHED)';
  if (second < BUSY_SECONDS + 5) return "proxies quiet: connections idle, waiting for the backend's 5 s keep-alive timeout";
  return 'backend closed the idle connections first: its side holds them in TIME-WAIT for 60 s';
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('sockmon demo: needs root (it builds a private network namespace)\n');
    process.exit(2);
  }
  const ns = await NetworkNamespace.create(['203.0.113.10/32', '203.0.113.96/27'], 'sockmon-demo-');
  let cleaning = false;
  const cleanUp = async (code: number) => {
    if (cleaning) return;
    cleaning = true;
    await ns.delete();
    process.exit(code);
  };
  process.once('SIGINT', () => void cleanUp(130));
  process.once('SIGTERM', () => void cleanUp(143));
  try {
    const traffic = ns.spawn(process.execPath, [TRAFFIC, JSON.stringify(plan)]);
    await waitForOutput(traffic, 'ready');
    const started = Date.now();
    for (let second = 0; second < TOTAL_SECONDS; second++) {
      if (second === BUSY_SECONDS) traffic.stdin?.write('quiet\n');
      const { stdout } = await promisify(execFile)('ip', ['netns', 'exec', ns.name, process.execPath, CLI, 'snapshot']);
      process.stdout.write(`\x1b[2J\x1b[H sockmon demo — namespace ${ns.name}, ${second}s of ${TOTAL_SECONDS}s (Ctrl-C to stop)\n`);
      process.stdout.write(` ${caption(second)}\n\n${stdout}`);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + (second + 1) * 1000 - Date.now())));
    }
    await cleanUp(0);
  } catch (error) {
    process.stderr.write(`sockmon demo: ${(error as Error).message}\n`);
    await cleanUp(1);
  }
}

void main();
