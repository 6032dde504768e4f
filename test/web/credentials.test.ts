// /etc/sockmon/ as systemd credentials: a web config named /etc/sockmon/web.yml, and the files it names, are read
// from $CREDENTIALS_DIRECTORY/sockmon_<file> (what LoadCredential=sockmon:/etc/sockmon makes). Here a temporary
// directory stands in for systemd's; the end-to-end test does it under a real systemd.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentialPath } from '../../src/web/credentials';
import { makeCertificates, requireTool } from '../helpers/certs';
import { exited, runCli, startServe } from '../helpers/cli';
import { CLI } from '../helpers/paths';

describe('credentials: /etc/sockmon/ through systemd credentials', function () {
  let dir: string;
  before(function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-credentials-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('maps files directly in /etc/sockmon/ to their copies, and nothing else', () => {
    writeFileSync(path.join(dir, 'sockmon_web.yml'), '');
    const env = { CREDENTIALS_DIRECTORY: dir };
    assert.equal(credentialPath('/etc/sockmon/web.yml', env), path.join(dir, 'sockmon_web.yml'));
    assert.equal(credentialPath('/etc/sockmon/absent.yml', env), '/etc/sockmon/absent.yml', 'no copy: the file itself');
    assert.equal(credentialPath('/etc/other/web.yml', env), '/etc/other/web.yml');
    assert.equal(credentialPath('/etc/sockmon/sub/web.yml', env), '/etc/sockmon/sub/web.yml');
    assert.equal(credentialPath('/etc/sockmon/web.yml', {}), '/etc/sockmon/web.yml', 'not under systemd');
  });

  it('serves TLS from a web config named /etc/sockmon/web.yml whose relative cert and key resolve to the copies', async function () {
    requireTool(this, 'openssl', ['version'], 'openssl');
    makeCertificates(dir);
    renameSync(path.join(dir, 'server.pem'), path.join(dir, 'sockmon_server.pem'));
    renameSync(path.join(dir, 'server.key'), path.join(dir, 'sockmon_server.key'));
    writeFileSync(path.join(dir, 'sockmon_web.yml'), 'tls_server_config:\n  cert_file: server.pem\n  key_file: /etc/sockmon/server.key\n');
    const env = { ...process.env, CREDENTIALS_DIRECTORY: dir };
    const served = await startServe(['--web.config.file', '/etc/sockmon/web.yml'], (args) => spawn(process.execPath, [CLI, ...args], { env }));
    try {
      assert.match(served.stderr(), /msg=listening .*tls=true/);
    } finally {
      served.child.kill();
      await exited(served.child);
    }
    // Without the credentials the same name is the real file (absent here): one line, exit 2.
    if (existsSync('/etc/sockmon/web.yml')) return;
    const bare = runCli(['serve', '--web.config.file', '/etc/sockmon/web.yml'], { CREDENTIALS_DIRECTORY: '' });
    assert.equal(bare.status, 2);
    assert.match(bare.stderr, /web config "\/etc\/sockmon\/web\.yml": cannot read it: ENOENT/);
  });
});
