// Native memory after a TIME-WAIT spike (root: a private namespace). The dump's cookie tables grow for a
// spike; once the spike has expired they must shrink back and the memory go back to the system, so that RSS
// returns to about where it was. The spike is made by bench/loadgen.c (server-side closes: TIME-WAIT sockets
// cost no descriptor) and expires on its own (the kernel keeps a TIME-WAIT socket 60 s, whatever the sysctls).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exited, startServe } from '../helpers/cli';
import { NetworkNamespace, requireRoot } from '../helpers/netns';
import { CLI, UNIT_NODE_OPTIONS } from '../helpers/paths';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SERVER = '203.0.113.10';
/**
 * ~24 MB of cookie tables, made in a few seconds; the test takes ~90 s, 60 of them the kernel's TIME-WAIT lifetime.
 * SOCKMON_SPIKE_SOCKETS=1000000 runs the 1M spike (up to 30 x 55,000 source ports).
 */
const SPIKE = Number(process.env.SOCKMON_SPIKE_SOCKETS ?? 300_000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

describe('native memory: tables that grew for a TIME-WAIT spike shrink back', function () {
  // 60 s of TIME-WAIT lifetime (fixed in the kernel), plus making the spike and the scrapes.
  this.timeout(240_000 + SPIKE / 2);
  let ns: NetworkNamespace | undefined;
  let dir: string | undefined;

  before(function () {
    requireRoot(this);
    if (spawnSync('gcc', ['--version']).error) throw new Error('gcc is missing (apt-get install gcc)');
  });
  after(async () => {
    await ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`returns RSS to within 20 MB of before once a ${SPIKE.toLocaleString('en')}-socket TIME-WAIT spike has expired`, async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-spike-'));
    const loadgen = path.join(dir, 'loadgen');
    execFileSync('gcc', ['-O2', '-o', loadgen, path.join(ROOT, 'bench', 'loadgen.c')]);
    ns = new NetworkNamespace('sockmon-spike-');
    // Ephemeral ports (the scrapes') stay clear of loadgen's 10000 and up; the namespace's TIME-WAIT cap (131,072 by
    // default) would cut the spike short.
    await ns.create([`${SERVER}/32`, '203.0.113.96/27'], ['net.ipv4.ip_local_port_range=1024 9999', 'net.ipv4.tcp_max_tw_buckets=2000000']);
    const served = await startServe(
      ['--no-churn'],
      (args) => ns!.spawn('env', [`NODE_OPTIONS=${UNIT_NODE_OPTIONS}`, process.execPath, CLI, ...args]),
      '127.0.0.1:19469',
    );
    const pid = served.child.pid as number;
    const scrape = async (times: number) => {
      for (let i = 0; i < times; i++) await ns!.fetch('http://127.0.0.1:19469/metrics');
    };
    const timeWaits = () => Number(execFileSync('ip', ['netns', 'exec', ns!.name, 'sh', '-c', 'ss -Htan state time-wait | wc -l'], { encoding: 'utf8' }));
    try {
      await scrape(20);
      const before = rssMb(pid);
      // 30 peers (203.0.113.97-126), source ports from 10000 up: no two connections share a 4-tuple.
      execFileSync(
        'ip',
        ['netns', 'exec', ns.name, loadgen, 'churn', String(50 + Math.ceil(SPIKE / 5000)), `${SERVER},80,${SERVER},203.0.113.97,30,10000,${SPIKE},server`],
        {
          stdio: 'ignore',
        },
      );
      await scrape(3);
      const during = rssMb(pid);
      const spiked = timeWaits();
      // Every TIME-WAIT socket expires 60 s after it was made; 90 s covers a loaded machine.
      for (const deadline = Date.now() + 90_000; timeWaits() > 0; await sleep(2000)) assert.ok(Date.now() < deadline, `${timeWaits()} TIME-WAIT left`);
      // The tables shrink after 8 low dumps in a row; each time-wait table is cleared every other dump: 24 dumps.
      await scrape(24);
      const afterMb = rssMb(pid);
      console.log(
        `      ${spiked} TIME-WAIT sockets: RSS before ${before.toFixed(1)} MB, during ${during.toFixed(1)} MB, after they expired ${afterMb.toFixed(1)} MB`,
      );
      assert.ok(during - before > 8, `the spike raised RSS by only ${(during - before).toFixed(1)} MB: it measures nothing`);
      // The tables (~24 MB at this size) are given back whole: what stays is V8's and malloc's slack, a few MB.
      assert.ok(
        afterMb - before <= Math.min(20, (during - before) / 2),
        `RSS after ${afterMb.toFixed(1)} MB, before ${before.toFixed(1)} MB, during ${during.toFixed(1)} MB`,
      );
    } finally {
      served.child.kill('SIGKILL');
      await exited(served.child);
    }
  });
});
