// A running daemon never crashes on a failed dump: with recvmsg() on its netlink socket failing (an
// LD_PRELOAD shim), it serves sockmon_up 0 with HTTP 200, logs the error, and recovers when dumps work again.
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exited, startServe } from './helpers/cli';
import { CLI } from './helpers/paths';
import { parseSamples, seriesOf } from './helpers/promtext';

describe('failure: injected netlink errors in a running daemon', function () {
  let dir: string;
  let serve: { child: ChildProcess; url: string; stderr: () => string };
  let failFile: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-fail-'));
    const shim = path.join(dir, 'fail_netlink.so');
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'fail_netlink.c'), '-ldl']);
    failFile = path.join(dir, 'fail');
    const env = { ...process.env, LD_PRELOAD: shim, SOCKMON_TEST_FAIL_FILE: failFile };
    serve = await startServe(['--cidr', '127.0.0.0/8'], (args) => spawn(process.execPath, [CLI, ...args], { env }));
  });
  after(async () => {
    serve?.child.kill('SIGTERM');
    if (serve) await exited(serve.child);
    rmSync(dir, { recursive: true, force: true });
  });

  const scrape = async () => {
    const response = await fetch(`${serve.url}/metrics`);
    assert.equal(response.status, 200);
    const samples = parseSamples(await response.text());
    return { up: seriesOf(samples, 'sockmon_up', [])[''], errors: seriesOf(samples, 'sockmon_dump_errors_total', [])[''] };
  };

  it('serves sockmon_up 0 while dumps fail, and 1 again once they work', async () => {
    assert.deepEqual(await scrape(), { up: 1, errors: 0 });
    writeFileSync(failFile, '');
    for (let i = 1; i <= 5; i++) assert.deepEqual(await scrape(), { up: 0, errors: i });
    assert.match(serve.stderr(), /level=error msg="socket dump failed" err="recvmsg EIO: Input\/output error" code=EIO/);
    unlinkSync(failFile);
    assert.deepEqual(await scrape(), { up: 1, errors: 5 });
    assert.equal(serve.child.exitCode, null, 'still running');
  });
});
