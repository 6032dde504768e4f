// Lean start (issue 22): a snapshot, --help or a bad flag loads only what it uses; the exporter's modules
// (prom-client and what it pulls in, the HTTP server, the web config's YAML parser, bcrypt) load only for serve.
// Which files a process loaded is a fact, unlike how long it took: `npm run bench:start` measures the time.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exited, startServe } from '../helpers/cli';
import { CLI } from '../helpers/paths';

const RECORDER = path.resolve(__dirname, '..', 'fixtures', 'record_modules.js');
/** What only the exporter needs: none of it may load before serve runs. */
const SERVE_ONLY = [
  /node_modules\/prom-client\//,
  /node_modules\/@opentelemetry\//,
  /node_modules\/tdigest\//,
  /node_modules\/bintrees\//,
  /node_modules\/yaml\//,
  /node_modules\/bcryptjs\//,
  /dist\/src\/metrics\//,
  /dist\/src\/web\/(?!listen_address\.js)/,
  /dist\/src\/cli\/serve\.js/,
];

describe('cli: lean start', () => {
  let dir: string;
  let out: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-lean-'));
    out = path.join(dir, 'modules');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const env = () => ({ ...process.env, SOCKMON_TEST_MODULES_OUT: out });
  const loaded = () => readFileSync(out, 'utf8').split('\n').filter(Boolean);
  const serveOnly = (modules: string[]) => modules.filter((file) => SERVE_ONLY.some((pattern) => pattern.test(file)));
  // A process that did not record leaves no file: nothing of an earlier run is read.
  beforeEach(() => rmSync(out, { force: true }));
  const runRecorded = (args: string[]) => spawnSync(process.execPath, ['--require', RECORDER, CLI, ...args], { encoding: 'utf8', env: env(), timeout: 30_000 });

  for (const args of [['snapshot', '--cidr', '127.0.0.0/8', '--port', '1'], ['snapshot', '--json'], ['--help'], ['snapshot', '--watch', '0.1', '--json']]) {
    it(`sockmon ${args.join(' ')} loads none of the exporter's modules`, () => {
      const result = runRecorded(args);
      assert.ok(result.status === 0 || result.status === 2, `exit ${result.status}: ${result.stderr}`);
      const modules = loaded();
      assert.ok(
        modules.some((file) => file.endsWith(path.join('dist', 'src', 'cli', 'cli.js'))),
        'the recorder saw the CLI load',
      );
      assert.deepEqual(serveOnly(modules), []);
    });
  }

  it('a bad flag still gives one line and exit 2, without loading the exporter', () => {
    const result = runRecorded(['snapshot', '--port', '0']);
    assert.equal(result.status, 2);
    assert.equal(result.stderr, 'sockmon: --port: invalid port "0" (1 to 65535)\n');
    assert.deepEqual(serveOnly(loaded()), []);
  });

  it('serve loads the exporter (the check above can fail)', async () => {
    const served = await startServe(['--cidr', '127.0.0.0/8', '--port', '1'], (a) =>
      spawn(process.execPath, ['--require', RECORDER, CLI, ...a], { env: env() }),
    );
    // A scrape answered: serve has run past its start (its SIGTERM handler is set), and the scrape path loaded.
    assert.equal((await fetch(`${served.url}/metrics`, { signal: AbortSignal.timeout(30_000) })).status, 200);
    served.child.kill('SIGTERM');
    assert.equal(await exited(served.child), 0);
    const modules = serveOnly(loaded());
    assert.ok(
      modules.some((file) => file.includes('node_modules/prom-client/')),
      `serve loaded no prom-client: ${modules.join(' ')}`,
    );
    assert.ok(modules.some((file) => file.endsWith(path.join('dist', 'src', 'cli', 'serve.js'))));
  });
});
