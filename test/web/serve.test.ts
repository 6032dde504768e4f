// `sockmon serve` as a process: HTTP endpoints, a real scrape checked by promtool, clean stop on SIGTERM.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { parseListenAddress } from '../../src/web/listen_address';
import { exited, startServe } from '../helpers/cli';
import { Population } from '../helpers/population';
import { parseSamples, seriesOf } from '../helpers/promtext';
import { requireTools } from '../helpers/prerequisites';

describe('server: listen addresses', () => {
  it('parses node_exporter-style addresses', () => {
    assert.deepEqual(parseListenAddress(':19469'), { host: undefined, port: 19469 });
    assert.deepEqual(parseListenAddress('127.0.0.1:9'), { host: '127.0.0.1', port: 9 });
    assert.deepEqual(parseListenAddress('[::1]:19469'), { host: '::1', port: 19469 });
    assert.deepEqual(parseListenAddress('localhost:80'), { host: 'localhost', port: 80 });
    for (const bad of ['19469', '::1:80', '[::1]', 'host:', ':70000']) assert.throws(() => parseListenAddress(bad), /invalid listen address/);
  });
});

describe('serve: the exporter process', () => {
  const population = new Population();
  let port: number;
  let serve: { child: ChildProcess; url: string; stderr: () => string };

  before(async () => {
    port = await population.listen('127.0.0.1');
    await population.connect({ from: '127.0.0.114', to: '127.0.0.1', port, count: 2 });
    await population.connect({ from: '127.0.0.115', to: '127.0.0.1', port, count: 1, closeBy: 'server' });
    serve = await startServe(['--cidr', '127.0.0.96/27', '--port', String(port), '--web.telemetry-path', '/probe']);
  });
  after(async () => {
    serve?.child.kill('SIGKILL');
    await population.close();
  });

  it('serves the counts at the telemetry path', async () => {
    const response = await fetch(`${serve.url}/probe`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0.0.4/);
    const samples = parseSamples(await response.text());
    assert.deepEqual(seriesOf(samples, 'sockmon_tcp_connections', ['peer', 'local_port', 'state']), {
      [`127.0.0.114 ${port} established`]: 2,
      [`127.0.0.115 ${port} time_wait`]: 1,
    });
    assert.deepEqual(seriesOf(samples, 'sockmon_up', []), { '': 1 });
    // The listener of the watched port, whatever the CIDR; Node listens with a backlog of 511.
    assert.deepEqual(seriesOf(samples, 'sockmon_tcp_listen_queue', ['address', 'local_port']), { [`127.0.0.1 ${port}`]: 0 });
    assert.deepEqual(seriesOf(samples, 'sockmon_tcp_listen_queue_limit', ['address', 'local_port']), { [`127.0.0.1 ${port}`]: 511 });
  });

  it('has a landing page linking the telemetry path, 404 elsewhere, 405 for other methods', async () => {
    const landing = await fetch(`${serve.url}/`);
    assert.equal(landing.status, 200);
    assert.match(await landing.text(), /<a href="\/probe">/);
    assert.equal((await fetch(`${serve.url}/metrics`)).status, 404);
    const post = await fetch(`${serve.url}/probe`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const head = await fetch(`${serve.url}/probe`, { method: 'HEAD' });
    assert.equal(head.status, 200);
  });

  it('produces a scrape (with listeners) that promtool check metrics accepts', async function () {
    requireTools(this, [{ command: 'promtool', apt: 'prometheus' }]);
    const text = await (await fetch(`${serve.url}/probe`)).text();
    // promtool exits non-zero on errors; lint warnings would be printed, so require silence.
    const output = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(output.trim(), '');
  });

  it('ignores SIGUSR1: no inspector opens (it would run any code sent to it)', async () => {
    serve.child.kill('SIGUSR1');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(serve.child.exitCode, null);
    const inspector = await new Promise<boolean>((resolve) => {
      const socket = net.connect(9229, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    assert.equal(inspector, false, 'something listens on 127.0.0.1:9229');
    assert.doesNotMatch(serve.stderr(), /Debugger listening/);
    assert.match((await fetch(`${serve.url}/probe`)).headers.get('content-type') ?? '', /text\/plain/);
  });

  it('logs SIGHUP and keeps serving (no web config: nothing to reload)', async () => {
    serve.child.kill('SIGHUP');
    for (let i = 0; i < 20 && !/SIGHUP/.test(serve.stderr()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.match(serve.stderr(), /level=info msg="SIGHUP: no --web.config.file, nothing to reload"/);
    assert.equal((await fetch(`${serve.url}/probe`)).status, 200);
  });

  it('stops with exit code 0 on SIGTERM', async () => {
    serve.child.kill('SIGTERM');
    assert.equal(await exited(serve.child), 0);
    assert.match(serve.stderr(), /msg=stopping signal=SIGTERM/);
  });
});
