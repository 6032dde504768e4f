// Long runs (root), in a private namespace, of sockmon as deployed (the unit's 64 MB heap cap):
//   node dist/bench/soak.js [scrapes] [concurrency]   thousands of scrapes of `sockmon serve --idle` while proxy
//                                                     nodes open and close connections (one per request)
//   node dist/bench/soak.js peers [count]             `count` (default 1,000,000) distinct peers open and reset a
//                                                     connection each, scraped every second, then forgotten
// Prints sockmon's RSS and open descriptors (and scrape times) along the way: they must stay flat.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TrafficPlan } from '../demo/traffic';
import { NetworkNamespace, waitForOutput } from '../test/helpers/netns';
import { UNIT_NODE_OPTIONS } from '../test/helpers/paths';

const ROOT = path.resolve(__dirname, '..', '..');
const PEERS_MODE = process.argv[2] === 'peers';
const SCRAPES = Number(process.argv[2] ?? 5000);
const CONCURRENCY = Number(process.argv[3] ?? 4);
const PEERS = Number(process.argv[3] ?? 1_000_000);
const RETENTION_S = 30;
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
    const serve = ns.spawn(process.execPath, [
      ...UNIT_NODE_OPTIONS.split(' '),
      path.join(ROOT, 'dist/src/cli/cli.js'),
      'serve',
      '--idle',
      '--web.listen-address',
      '127.0.0.1:19469',
    ]);
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

/** 1M distinct peers come and go (127.64.0.0/10 on the namespace's loopback); RSS and scrape time after each 100k and after the retention period. */
async function peers(): Promise<void> {
  const ns = await NetworkNamespace.create([], 'sockmon-soak-');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-soak-'));
  const stop = async (code: number) => {
    await ns.delete();
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(130));
  try {
    const generator = path.join(dir, 'distinct_peers');
    execFileSync('gcc', ['-O2', '-o', generator, path.join(ROOT, 'test/fixtures/distinct_peers.c')]);
    const args = ['serve', '--cidr', '127.64.0.0/10', '--port', '8080', '--retention', `${RETENTION_S}s`, '--web.listen-address', '127.0.0.1:19469'];
    const serve = ns.spawn(process.execPath, [...UNIT_NODE_OPTIONS.split(' '), path.join(ROOT, 'dist/src/cli/cli.js'), ...args]);
    await new Promise((resolve) => serve.stderr?.once('data', resolve));
    const pid = serve.pid as number;
    const scrape = async () => {
      const started = Date.now();
      const body = await ns.fetch('http://127.0.0.1:19469/metrics');
      const closed = [...body.matchAll(/^sockmon_tcp_connections_closed_total\{[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      const duration = Number(/^sockmon_scrape_duration_seconds (\S+)$/m.exec(body)?.[1]);
      const lost = Number(/^sockmon_close_events_lost_total (\S+)$/m.exec(body)?.[1]);
      return { ms: Date.now() - started, closed, lost, duration };
    };
    console.log(`soak: ${PEERS} distinct peers, 100,000 at a time, scraped every second; retention ${RETENTION_S}s`);
    console.log(`peers      RSS MB  fds  closed_total  lost  scrape ms  scrape_duration ms`);
    const line = async (label: string) => {
      const s = await scrape();
      const u = usage(pid);
      console.log(
        `${label.padEnd(9)}  ${u.rssMb.toFixed(1).padStart(6)}  ${String(u.fds).padStart(3)}  ${String(s.closed).padStart(12)}  ${String(s.lost).padStart(4)}  ${String(s.ms).padStart(9)}  ${(s.duration * 1000).toFixed(1).padStart(18)}`,
      );
    };
    await line('0');
    for (let done = 0; done < PEERS; done += 100_000) {
      const start = 127 * 2 ** 24 + 64 * 2 ** 16 + 1 + done; // 127.64.0.1 + done
      const address = [24, 16, 8, 0].map((shift) => Math.floor(start / 2 ** shift) % 256).join('.');
      const batch = Math.min(100_000, PEERS - done);
      const run = ns.exec(generator, ['127.0.0.1', '8080', address, String(batch), '120'], 150_000);
      let running = true;
      void run.finally(() => (running = false)).catch(() => {});
      while (running) {
        await scrape();
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      await run;
      await line(String(done + batch));
    }
    await new Promise((resolve) => setTimeout(resolve, (RETENTION_S + 2) * 1000));
    await scrape(); // the one that forgets
    await line('forgotten');
    await stop(0);
  } catch (error) {
    console.error(`soak: ${(error as Error).message}`);
    await stop(1);
  }
}

void (PEERS_MODE ? peers() : main());
