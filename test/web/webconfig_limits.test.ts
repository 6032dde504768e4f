// A web config (or a file it names) too large to hold is refused, not fatal: at start with one line and exit
// 2 (the unit does not restart on 2), and while running by a reload that keeps the old config. sockmon runs
// under the unit's NODE_OPTIONS (64 MB heap cap), where today's sizes would kill it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { htpasswdHash, makeCertificates, requireTool } from '../helpers/certs';
import { exited, runCli, startServe } from '../helpers/cli';
import { CLI, UNIT_NODE_OPTIONS } from '../helpers/paths';

const UNIT_ENV = { NODE_OPTIONS: UNIT_NODE_OPTIONS };
const HASH = `$2y$10$${'a'.repeat(53)}`;
/** basic_auth_users with `count` users: 60,000 of them make 4.4 MB. */
const manyUsers = (count: number) => `basic_auth_users:\n${Array.from({ length: count }, (_, i) => `  user${i}: ${HASH}\n`).join('')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('web config: size limits and bounded parsing', function () {
  this.timeout(120_000);
  let dir: string;
  const file = (name: string) => path.join(dir, name);
  const serveWith = (config: string) => runCli(['serve', '--web.listen-address', '127.0.0.1:0', '--web.config.file', config], UNIT_ENV);

  before(function () {
    requireTool(this, 'openssl', ['version'], 'openssl');
    requireTool(this, 'htpasswd', ['-nbBC', '4', 'u', 'p'], 'apache2-utils');
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-webconfig-limits-'));
    makeCertificates(dir);
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  const refusals: [string, () => string, RegExp][] = [
    ['a 4.4 MB config of 60,000 users', () => manyUsers(60_000), /: it is 4\.\d MB, over the limit of 64 KiB$/],
    [
      'a small config with too many users',
      () => `basic_auth_users:\n${Array.from({ length: 1001 }, (_, i) => `  u${i}: x\n`).join('')}`,
      /basic_auth_users has 1001 users, over the limit of 1000$/,
    ],
    [
      'an alias bomb',
      () =>
        `a: &a ["x","x","x","x","x","x","x","x","x"]\n${Array.from({ length: 8 }, (_, i) => `${'bcdefghi'[i]}: &${'bcdefghi'[i]} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`).join('\n')}\nbasic_auth_users: *i\n`,
      /invalid YAML: .*alias/i,
    ],
    [
      'a 2 MiB certificate file',
      () => {
        writeFileSync(file('huge.pem'), Buffer.alloc(2 << 20, 'A'));
        return 'tls_server_config:\n  cert_file: huge.pem\n  key_file: server.key\n';
      },
      /cert_file ".*huge\.pem": it is 2 MiB, over the limit of 1 MiB$/,
    ],
  ];
  for (const [what, content, message] of refusals) {
    it(`refuses ${what} at start: one line naming the file and the limit, exit 2`, () => {
      const config = file('refused.yml');
      writeFileSync(config, content());
      const result = serveWith(config);
      assert.equal(result.status, 2, `exit ${result.status}: ${result.stderr.slice(0, 500)}`);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr.slice(0, 500));
      assert.ok(lines[0].includes(config), lines[0]);
      assert.match(lines[0], message);
    });
  }

  it('keeps serving with the old config when an 88 MB file replaces it', async () => {
    const config = file('web.yml');
    writeFileSync(config, `basic_auth_users:\n  prometheus: ${htpasswdHash('right', 4)}\n`);
    const served = await startServe(['--no-churn', '--web.config.file', config], (a) =>
      spawn(process.execPath, [CLI, ...a], { env: { ...process.env, ...UNIT_ENV } }),
    );
    try {
      const auth = { Authorization: `Basic ${Buffer.from('prometheus:right').toString('base64')}` };
      assert.equal((await fetch(`${served.url}/metrics`, { headers: auth })).status, 200);
      const huge = manyUsers(Math.ceil((88e6 - 18) / 74));
      assert.ok(huge.length > 88e6);
      writeFileSync(file('huge.yml'), huge);
      renameSync(file('huge.yml'), config); // as an editor or a config manager replaces a file
      // The file watch polls every second; 20 s covers a loaded machine many times over.
      for (const deadline = Date.now() + 20_000; !/reload failed/.test(served.stderr()); await sleep(200)) {
        assert.ok(Date.now() < deadline, `no reload: ${served.stderr()}`);
      }
      assert.match(served.stderr(), /level=error msg="web config reload failed; keeping the previous one".*over the limit of 64 KiB/);
      assert.equal(served.child.exitCode, null, 'sockmon is still running');
      assert.equal((await fetch(`${served.url}/metrics`, { headers: auth })).status, 200, 'the old config is in force');
      assert.equal((await fetch(`${served.url}/metrics`)).status, 401);
    } finally {
      served.child.kill('SIGKILL');
      await exited(served.child);
    }
  });
});
