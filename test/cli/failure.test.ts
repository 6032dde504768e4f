// A running daemon never crashes on a failed dump or a stopped close watcher. With an LD_PRELOAD shim failing
// its netlink reads: failed dumps give sockmon_up 0 with HTTP 200 and a logged error, and it recovers when
// dumps work again; a close watcher whose thread stops shows as sockmon_churn_up 0 and is restarted.
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exited, startServe } from '../helpers/cli';
import { CLI } from '../helpers/paths';
import { Population } from '../helpers/population';
import { parseSamples, seriesOf } from '../helpers/promtext';

describe('failure: injected netlink errors in a running daemon', function () {
  let dir: string;
  let serve: { child: ChildProcess; url: string; stderr: () => string };
  let failFile: string;
  let failRecvFile: string;
  const population = new Population();
  let port: number;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-fail-'));
    const shim = path.join(dir, 'fail_netlink.so');
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'fail_netlink.c'), '-ldl']);
    failFile = path.join(dir, 'fail');
    failRecvFile = path.join(dir, 'fail-recv');
    port = await population.listen('127.0.0.1');
    const env = { ...process.env, LD_PRELOAD: shim, SOCKMON_TEST_FAIL_FILE: failFile, SOCKMON_TEST_FAIL_RECV_FILE: failRecvFile };
    serve = await startServe(['--cidr', '127.0.0.96/27', '--port', String(port)], (args) => spawn(process.execPath, [CLI, ...args], { env }));
  });
  after(async () => {
    serve?.child.kill('SIGTERM');
    if (serve) await exited(serve.child);
    await population.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const scrape = async () => {
    const response = await fetch(`${serve.url}/metrics`);
    assert.equal(response.status, 200);
    const samples = parseSamples(await response.text());
    const one = (name: string) => seriesOf(samples, name, [])[''];
    return {
      up: one('sockmon_up'),
      errors: one('sockmon_dump_errors_total'),
      churnUp: one('sockmon_churn_up'),
      closed: seriesOf(samples, 'sockmon_tcp_connections_closed_total', ['peer'])['127.0.0.100'] ?? 0,
    };
  };

  it('serves sockmon_up 0 while dumps fail, and 1 again once they work', async () => {
    assert.deepEqual(await scrape(), { up: 1, errors: 0, churnUp: 1, closed: 0 });
    writeFileSync(failFile, '');
    // Connections that close while dumps fail are counted once dumps work again.
    await population.connect({ from: '127.0.0.100', to: '127.0.0.1', port, count: 3, closeBy: 'client' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let i = 1; i <= 5; i++) assert.deepEqual(await scrape(), { up: 0, errors: i, churnUp: 1, closed: 0 });
    assert.match(serve.stderr(), /level=error msg="socket dump failed" err="recvmsg EIO: Input\/output error" code=EIO/);
    unlinkSync(failFile);
    assert.deepEqual(await scrape(), { up: 1, errors: 5, churnUp: 1, closed: 3 });
    assert.equal(serve.child.exitCode, null, 'still running');
  });

  it('shows a stopped close watcher as sockmon_churn_up 0, restarts it, and counts again', async () => {
    writeFileSync(failRecvFile, '');
    // A close event wakes the watcher, whose read fails: its thread stops.
    await population.connect({ from: '127.0.0.100', to: '127.0.0.1', port, count: 1, closeBy: 'client' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    unlinkSync(failRecvFile);
    const stopped = await scrape();
    assert.equal(stopped.churnUp, 0, serve.stderr());
    assert.match(serve.stderr(), /level=error msg="close events stopped; restarting the close watcher[^"]*" err="recv EIO: Input\/output error"/);
    await population.connect({ from: '127.0.0.100', to: '127.0.0.1', port, count: 2, closeBy: 'client' });
    for (let attempt = 0; attempt < 20; attempt++) {
      const restarted = await scrape();
      if (restarted.closed === 5) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.deepEqual(await scrape(), { up: 1, errors: 5, churnUp: 1, closed: 5 });
    assert.match(serve.stderr(), /level=info msg="close events flowing again"/);
  });
});
