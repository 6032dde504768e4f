// Long run (root): thousands of scrapes of `sockmon serve --idle` while proxy nodes open and close
// connections (one per request) in a private namespace. Prints sockmon's RSS and open descriptors at the
// start, along the way and at the end: both must stay flat. Usage: node dist/bench/soak.js [scrapes] [concurrency]
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TrafficPlan } from '../demo/traffic';
import { NetworkNamespace, waitForOutput } from '../test/helpers/netns';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRAPES = Number(process.argv[2] ?? 5000);
const CONCURRENCY = Number(process.argv[3] ?? 4);
const TIME_LIMIT_MS = 15 * 60_000;

function usage(pid: number): { rssMb: number; fds: number } {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { rssMb: Number(rss) / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('soak: needs root (private network namespace)\n');
    process.exit(2);
  }
  const ns = await NetworkNamespace.create(['203.0.113.10/32', '203.0.113.96/27'], 'sockmon-soak-');
  const stop = async (code: number) => {
    await ns.delete();
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(130));
  try {
    // The heap cap of systemd/sockmon.service, so that this measures sockmon as deployed.
    const serve = ns.spawn(process.execPath, ['--max-old-space-size=64', path.join(ROOT, 'dist/src/cli.js'), 'serve', '--idle', '--web.listen-address', '127.0.0.1:19469']);
    await new Promise((resolve) => serve.stderr?.once('data', resolve));
    const plan: TrafficPlan = {
      backend: { host: '203.0.113.10', port: 80, keepAliveTimeoutMs: 2000 },
      proxies: ['203.0.113.114', '203.0.113.115', '203.0.113.116', '203.0.113.117'].map((from, i) => ({ from, keepAlive: i, closed: 0 })),
      live: { intervalMs: 50, burst: 3, reuse: false },
    };
    const traffic = ns.spawn(process.execPath, [path.join(ROOT, 'dist/demo/traffic.js'), JSON.stringify(plan)]);
    await waitForOutput(traffic, 'ready');

    // The scraper runs inside the namespace: one node process doing every scrape.
    const script = `
      const [url, total, concurrency] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
      let started = 0, finished = 0, failed = 0;
      const value = (body, name) => Number((new RegExp('^' + name + ' (\\\\S+)', 'm').exec(body) || [])[1]);
      const worker = async () => { while (started < total) { started++; const r = await fetch(url).catch(() => null);
        const body = r && r.status === 200 ? await r.text() : '';
        if (!/^sockmon_up 1$/m.test(body)) failed++;
        if (++finished % Math.ceil(total / 10) === 0) process.stdout.write('progress ' + finished + ' ' +
          value(body, 'nodejs_heap_size_used_bytes') + ' ' + value(body, 'nodejs_external_memory_bytes') + '\\n'); } };
      Promise.all(Array.from({ length: concurrency }, worker)).then(() => process.stdout.write('done ' + failed + '\\n'));`;
    const first = usage(serve.pid as number);
    console.log(`soak: ${SCRAPES} scrapes, ${CONCURRENCY} at a time, while 4 proxies open and close connections`);
    console.log(`scrapes   RSS MB   fds  heap MB  external MB`);
    console.log(`${'0'.padStart(7)}  ${first.rssMb.toFixed(1).padStart(7)}  ${String(first.fds).padStart(4)}`);
    const scraper = ns.spawn(process.execPath, ['-e', script, 'http://127.0.0.1:19469/metrics', String(SCRAPES), String(CONCURRENCY)]);
    const deadline = setTimeout(() => {
      console.error('soak: time limit reached');
      void stop(1);
    }, TIME_LIMIT_MS);
    let failed = -1;
    let buffered = '';
    await new Promise<void>((resolve) => {
      scraper.stdout?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const [word, value, heapUsed, external] = buffered.slice(0, newline).split(' ');
          buffered = buffered.slice(newline + 1);
          if (word === 'progress') {
            const now = usage(serve.pid as number);
            const mb = (bytes: string) => (Number(bytes) / 2 ** 20).toFixed(1).padStart(9);
            console.log(`${value.padStart(7)}  ${now.rssMb.toFixed(1).padStart(7)}  ${String(now.fds).padStart(4)}  ${mb(heapUsed)}  ${mb(external)}`);
          } else if (word === 'done') {
            failed = Number(value);
            resolve();
          }
        }
      });
    });
    clearTimeout(deadline);
    const last = usage(serve.pid as number);
    console.log(`first: RSS ${first.rssMb.toFixed(1)} MB, ${first.fds} fds; last: RSS ${last.rssMb.toFixed(1)} MB, ${last.fds} fds; failed scrapes: ${failed}`);
    await stop(failed === 0 ? 0 : 1);
  } catch (error) {
    console.error(`soak: ${(error as Error).message}`);
    await stop(1);
  }
}

void main();
