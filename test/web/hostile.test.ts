// Attacks on `sockmon serve` from the outside, each in its nasty variant, against the real process under the
// unit's heap cap: scrapes must keep being answered, and the figures (scrape latency during the attack, CPU
// per pipelined request) are printed for the record, never asserted as timings.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { REJECTION_DELAY_MS } from '../../src/web/auth';
import { htpasswdHash, makeCertificates, requireTool } from '../helpers/certs';
import { exited, startServe } from '../helpers/cli';
import { CLI, UNIT_NODE_OPTIONS } from '../helpers/paths';

const FLOOD = path.resolve(__dirname, '..', 'fixtures', 'flood.js');
const HEAP_CAP = { ...process.env, NODE_OPTIONS: UNIT_NODE_OPTIONS };
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `sockmon serve` as the unit runs it (64 MB heap cap), without the close watcher. */
const serveCapped = (args: string[]) => startServe(['--no-churn', ...args], (a) => spawn(process.execPath, [CLI, ...a], { env: HEAP_CAP }));

/** CPU time (user + system) a process has used, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in USER_HZ (100)
}

const flood = (...args: (string | number)[]) => run(process.execPath, [FLOOD, ...args.map(String)], { timeout: 90_000 });

type Scrape = () => Promise<number>;
/** Scrapes every `everyMs` while `attack` runs; returns each scrape's status and latency. */
async function scrapesDuring(attack: Promise<unknown>, scrape: Scrape, everyMs = 200) {
  const results: { status: number; ms: number }[] = [];
  let running = true;
  void attack.finally(() => (running = false));
  await sleep(1000); // let the attack build up (not a margin: scrapes during the build-up would count too)
  while (running) {
    const started = Date.now();
    const status = await scrape().catch(() => 0);
    results.push({ status, ms: Date.now() - started });
    await sleep(everyMs);
  }
  await attack;
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  return { answered: results.filter((r) => r.status === 200).length, total: results.length, p50: ms[ms.length >> 1], max: ms[ms.length - 1] };
}

const httpScrape =
  (url: string, headers: Record<string, string> = {}) =>
  async () =>
    // 15 s: Prometheus' default scrape timeout is 10 s; a scrape slower than that already failed for Prometheus.
    (await fetch(`${url}/metrics`, { headers: { connection: 'close', ...headers }, signal: AbortSignal.timeout(15_000) })).status;

describe('hostile clients: sockmon serve keeps answering', function () {
  this.timeout(120_000);
  let served: Awaited<ReturnType<typeof startServe>>;
  let port: number;

  before(async () => {
    served = await serveCapped([]);
    port = Number(new URL(served.url).port);
  });
  after(async () => {
    served?.child.kill('SIGKILL');
  });

  it('answers pipelined requests one at a time, in order, on one connection', async () => {
    const responses = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () =>
        socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(20) + 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString('latin1')));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    const statuses = [...responses.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => m[1]);
    assert.deepEqual(statuses, Array(21).fill('200'));
    assert.match(responses, /<html>[\s\S]*$/, 'the landing page comes last');
  });

  // 2,000 requests (70 KB) overrun what a connection may have waiting and are closed at once; 400 (14 KB) are
  // answered one at a time until the client has gone.
  for (const requests of [2000, 400]) {
    it(`survives 50 connections that each pipeline ${requests} requests and vanish, under the 64 MB heap cap`, async () => {
      const pid = served.child.pid as number;
      assert.equal(served.child.exitCode, null, `sockmon died: ${served.stderr()}`);
      const cpuBefore = cpuMs(pid);
      const result = JSON.parse((await flood('pipeline', '127.0.0.1', port, 50, requests)).stdout);
      await sleep(2000); // whatever work is left would run now (CPU is read after: more time only adds work left over)
      const cpu = cpuMs(pid) - cpuBefore;
      assert.equal(served.child.exitCode, null, `sockmon died: ${served.stderr()}`);
      assert.equal(await httpScrape(served.url)(), 200);
      console.log(
        `      ${result.requests} pipelined requests: ${cpu.toFixed(0)} ms of sockmon CPU, ${((cpu * 1000) / result.requests).toFixed(1)} µs per request`,
      );
    });
  }

  it('closes a connection that queues more pipelined requests than it may', async () => {
    const answers = await new Promise<number | undefined>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(1000)));
      let data = '';
      socket.on('error', () => {});
      socket.pause(); // not reading at first: the answers would pile up in the server
      setTimeout(() => socket.resume(), 2000);
      socket.on('data', (chunk) => (data += chunk.toString('latin1')));
      socket.on('close', () => resolve(data.match(/^HTTP\/1\.1 /gm)?.length ?? 0));
      // The server closes such a connection at once (its 16 KiB limit); 15 s is that many times over on a loaded machine.
      setTimeout(() => resolve(undefined), 15_000).unref();
    });
    assert.notEqual(answers, undefined, 'the connection was left open');
    assert.ok((answers as number) < 100, `${answers} of 1000 pipelined requests were answered`);
  });

  it('answers every scrape while 1,100 silent connections are re-opened as fast as they are closed', async () => {
    assert.equal(served.child.exitCode, null, `sockmon died: ${served.stderr()}`);
    const figures = await scrapesDuring(flood('idle', '127.0.0.1', port, 1100, 12), httpScrape(served.url));
    console.log(`      ${figures.answered}/${figures.total} scrapes answered, p50 ${figures.p50} ms, max ${figures.max} ms`);
    assert.equal(figures.answered, figures.total);
    // The figure that matters is answered === total; this only checks the attack was sampled throughout. The
    // scraper waits for each answer, then 200 ms: ~45 scrapes in the 11 s of attack on an idle machine, 15-19
    // seen with two CPU-bound processes beside it. 5 still puts a scrape in every ~2 s of the attack.
    assert.ok(figures.total >= 5, `only ${figures.total} scrapes were tried`);
  });

  it('stops at once on SIGTERM after the attacks', async () => {
    served.child.kill('SIGTERM');
    assert.equal(await exited(served.child), 0);
  });
});

describe('hostile clients: TLS and basic auth', function () {
  this.timeout(120_000);
  let dir: string;
  let served: Awaited<ReturnType<typeof startServe>>;
  let port: number;
  const auth = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

  before(async function () {
    requireTool(this, 'openssl', ['version'], 'openssl');
    requireTool(this, 'htpasswd', ['-nbBC', '4', 'u', 'p'], 'apache2-utils');
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-hostile-'));
    makeCertificates(dir);
    // A cheap hash (cost 5, as `htpasswd -nbB` makes) and a dear one: rejections must not tell them apart.
    writeFileSync(
      path.join(dir, 'auth.yml'),
      `basic_auth_users:\n  fast: ${htpasswdHash('fast secret', 5, 'fast')}\n  prometheus: ${htpasswdHash('right', 10)}\n`,
    );
    writeFileSync(path.join(dir, 'tls.yml'), 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n');
  });
  afterEach(() => served?.child.kill('SIGKILL'));
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('answers every scrape while 1,100 connections never send a ClientHello', async () => {
    served = await serveCapped(['--web.config.file', path.join(dir, 'tls.yml')]);
    port = Number(new URL(served.url).port);
    const ca = readFileSync(path.join(dir, 'ca.pem'));
    const scrape = () =>
      new Promise<number>((resolve, reject) => {
        const request = https.get({ host: '127.0.0.1', port, path: '/metrics', ca, agent: false, timeout: 15_000 }, (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        });
        request.on('timeout', () => request.destroy(new Error('timeout')));
        request.on('error', reject);
      });
    const figures = await scrapesDuring(flood('idle', '127.0.0.1', port, 1100, 12), scrape);
    console.log(`      ${figures.answered}/${figures.total} scrapes answered over TLS, p50 ${figures.p50} ms, max ${figures.max} ms`);
    assert.equal(figures.answered, figures.total);
    // The figure that matters is answered === total; this only checks the attack was sampled throughout. The
    // scraper waits for each answer, then 200 ms: ~45 scrapes in the 11 s of attack on an idle machine, 15-19
    // seen with two CPU-bound processes beside it. 5 still puts a scrape in every ~2 s of the attack.
    assert.ok(figures.total >= 5, `only ${figures.total} scrapes were tried`);
  });

  it('answers pipelined requests over TLS one at a time, in order', async () => {
    served = await serveCapped(['--web.config.file', path.join(dir, 'tls.yml')]);
    const ca = readFileSync(path.join(dir, 'ca.pem'));
    const responses = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: Number(new URL(served.url).port), ca }, () =>
        socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(10) + 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString('latin1')));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    assert.deepEqual(
      [...responses.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => m[1]),
      Array(11).fill('200'),
    );
  });

  it('answers every scrape while 32 clients send wrong passwords', async () => {
    served = await serveCapped(['--web.config.file', path.join(dir, 'auth.yml')]);
    // The attackers come from addresses of their own (127.0.0.2 up): checks wait per source address, and
    // attackers sharing the scraper's address would share its two places in the queue.
    const attack = flood('sources', '127.0.0.1', new URL(served.url).port, 32, 10, '127.0.0.2', 'random', 'http');
    const figures = await scrapesDuring(attack, httpScrape(served.url, auth('prometheus', 'right')));
    console.log(`      ${figures.answered}/${figures.total} scrapes answered, p50 ${figures.p50} ms, max ${figures.max} ms`);
    assert.equal(figures.answered, figures.total);
  });

  it('rejects wrong passwords after the same delay whichever user is named (cost 5, cost 10, unknown)', async () => {
    served = await serveCapped(['--web.config.file', path.join(dir, 'auth.yml')]);
    const timings: Record<string, number[]> = { fast: [], prometheus: [], nobody: [] };
    for (let round = 0; round < 3; round++) {
      for (const user of Object.keys(timings)) {
        const started = Date.now();
        const response = await fetch(`${served.url}/metrics`, { headers: auth(user, 'wrong') });
        timings[user].push(Date.now() - started);
        assert.equal(response.status, 401);
      }
    }
    const medians = Object.fromEntries(Object.entries(timings).map(([user, ms]) => [user, ms.sort((a, b) => a - b)[1]]));
    console.log(`      rejection medians: ${JSON.stringify(medians)} ms`);
    // A lower bound only (load makes answers later, never earlier); 5 ms is timer granularity between the two clocks.
    for (const [user, ms] of Object.entries(timings)) assert.ok(Math.min(...ms) >= REJECTION_DELAY_MS - 5, `${user}: ${ms}`);
    assert.equal((await fetch(`${served.url}/metrics`, { headers: auth('fast', 'fast secret') })).status, 200);
  });
});
