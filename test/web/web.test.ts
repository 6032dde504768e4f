// The web config (TLS, mutual TLS, basic auth with htpasswd hashes, reload) and the HTTP limits, against a
// real `sockmon serve` process and real certificates made with openssl.
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { htpasswdHash, issueCertificate, makeCertificates, requireTool } from '../helpers/certs';
import { exited, runCli, startServe } from '../helpers/cli';

interface Served {
  child: ChildProcess;
  port: number;
  log: () => string;
}

/** `sockmon serve` on an ephemeral port of 127.0.0.1, without the close watcher (not what these tests are about). */
async function serveWith(...args: string[]): Promise<Served> {
  const { child, url, stderr } = await startServe(['--no-churn', ...args]);
  return { child, port: Number(new URL(url).port), log: stderr };
}

function get(
  port: number,
  options: https.RequestOptions & { auth?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/metrics', ...options }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

describe('web config: TLS and basic auth as node_exporter', function () {
  let dir: string;
  let served: Served;
  let ca: Buffer;
  const file = (name: string) => path.join(dir, name);
  const config = (users: string, extra = '') =>
    `tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n${extra}basic_auth_users:\n  prometheus: ${users}\n`;

  before(async function () {
    requireTool(this, 'openssl', ['version'], 'openssl');
    requireTool(this, 'htpasswd', ['-nbBC', '4', 'u', 'p'], 'apache2-utils');
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-web-'));
    makeCertificates(dir);
    ca = execFileSync('cat', [file('ca.pem')]);
    writeFileSync(file('web.yml'), config(htpasswdHash('first password')));
    served = await serveWith('--web.config.file', file('web.yml'));
  });
  after(async () => {
    served?.child.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const basic = (password: string) => `prometheus:${password}`;

  it('serves metrics over TLS to the right credentials ($2y$ hash from htpasswd)', async () => {
    const ok = await get(served.port, { ca, auth: basic('first password') });
    assert.equal(ok.status, 200);
    assert.match(ok.body, /^sockmon_up 1$/m);
  });

  it('answers missing or wrong credentials with 401 and WWW-Authenticate, on every path', async () => {
    for (const options of [{}, { auth: basic('wrong') }, { auth: 'nobody:first password' }, { path: '/' }]) {
      const denied = await get(served.port, { ca, ...options });
      assert.equal(denied.status, 401);
      assert.match(String(denied.headers['www-authenticate']), /^Basic realm="sockmon"/);
      assert.doesNotMatch(denied.body, /sockmon_/);
    }
  });

  it('gives plain HTTP on the TLS port no metrics', async () => {
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(served.port, '127.0.0.1', () => socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString('latin1')));
      socket.on('close', () => resolve(data));
      socket.on('error', () => resolve(data));
    });
    assert.doesNotMatch(answer, /sockmon_up/);
  });

  it('reloads a changed config, and keeps the old one in force when the new one is broken', async () => {
    writeFileSync(file('web.yml'), config(htpasswdHash('second password')));
    let status = 0;
    for (let i = 0; i < 40 && status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      status = (await get(served.port, { ca, auth: basic('second password') })).status;
    }
    assert.equal(status, 200, 'the new password works');
    assert.equal((await get(served.port, { ca, auth: basic('first password') })).status, 401);

    writeFileSync(file('web.yml'), 'basic_auth_users:\n  prometheus: not-a-hash\n');
    for (let i = 0; i < 40 && !/web config reload failed/.test(served.log()); i++) await new Promise((resolve) => setTimeout(resolve, 250));
    assert.match(served.log(), /level=error msg="web config reload failed; keeping the previous one" .*err=".*not a bcrypt hash/);
    assert.equal((await get(served.port, { ca, auth: basic('second password') })).status, 200);
  });

  const waitForLog = async (pattern: RegExp, from: number) => {
    for (let i = 0; i < 40 && !pattern.test(served.log().slice(from)); i++) await new Promise((resolve) => setTimeout(resolve, 250));
    assert.match(served.log().slice(from), pattern);
  };

  for (const [what, text] of [
    ['an emptied file', ''],
    ['basic_auth_users with no entries', 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n'],
    ['no tls_server_config', `basic_auth_users:\n  prometheus: ${'$2y$04$' + 'a'.repeat(53)}\n`],
  ]) {
    it(`refuses a reload to ${what}, at error level, and keeps authentication and TLS`, async () => {
      writeFileSync(file('web.yml'), config(htpasswdHash('second password')));
      const from = served.log().length;
      writeFileSync(file('web.yml'), text);
      await waitForLog(/level=error msg="web config refused; keeping the previous one" .*reason="it (has no|would)/, from);
      assert.equal((await get(served.port, { ca })).status, 401, 'still asks for credentials');
      assert.equal((await get(served.port, { ca, auth: basic('second password') })).status, 200, 'over TLS');
    });
  }

  it('re-reads the web config on SIGHUP, and a certificate renewed in place without a change to the config', async () => {
    writeFileSync(file('web.yml'), config(htpasswdHash('second password')));
    await waitForLog(/msg="web config reloaded"/, 0);
    let from = served.log().length;
    served.child.kill('SIGHUP');
    await waitForLog(/level=info msg="web config reloaded" trigger=SIGHUP/, from);
    // A new certificate and key for the same name, signed by the same CA, written over the old files.
    const fingerprint = () =>
      new Promise<string>((resolve, reject) => {
        const request = https.get({ host: '127.0.0.1', port: served.port, path: '/', ca, agent: false }, (response) => {
          resolve((response.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256);
          response.resume();
        });
        request.on('error', reject);
      });
    const before = await fingerprint();
    from = served.log().length;
    issueCertificate(dir, 'server');
    await waitForLog(/level=info msg="web config reloaded" trigger=".*server\.(pem|key) changed"/, from);
    let after = before;
    for (let i = 0; i < 20 && after === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      after = await fingerprint();
    }
    assert.notEqual(after, before, 'new connections get the renewed certificate');
    assert.equal(served.child.exitCode, null, 'still running');
  });

  it('requires a client certificate signed by client_ca_file with RequireAndVerifyClientCert', async () => {
    writeFileSync(file('mtls.yml'), config(htpasswdHash('pw'), '  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n'));
    const mtls = await serveWith('--web.config.file', file('mtls.yml'));
    try {
      const read = (name: string) => execFileSync('cat', [file(name)]);
      const ok = await get(mtls.port, { ca, cert: read('client.pem'), key: read('client.key'), auth: basic('pw') });
      assert.equal(ok.status, 200);
      await assert.rejects(get(mtls.port, { ca, auth: basic('pw') }), 'no client certificate');
      await assert.rejects(get(mtls.port, { ca, cert: read('other.pem'), key: read('other.key'), auth: basic('pw') }), 'a certificate of another CA');
    } finally {
      mtls.child.kill('SIGKILL');
    }
  });

  const broken: [string, string, RegExp][] = [
    ['malformed YAML', 'tls_server_config: [\n', /invalid YAML/],
    ['an unknown field', 'basic_auth_user:\n  a: b\n', /unknown field "basic_auth_user"/],
    ['a missing certificate file', 'tls_server_config:\n  cert_file: absent.pem\n  key_file: server.key\n', /cannot read cert_file ".*absent.pem": ENOENT/],
    ['a key that does not match', 'tls_server_config:\n  cert_file: server.pem\n  key_file: client.key\n', /bad TLS certificate or key/],
    ['a plain-text password', 'basic_auth_users:\n  prometheus: hunter2\n', /the password of "prometheus" is not a bcrypt hash/],
    [
      'an unknown client_auth_type',
      'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: Sometimes\n',
      /invalid client_auth_type "Sometimes"/,
    ],
    [
      'a verifying client_auth_type without a CA',
      'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n',
      /needs client_ca_file/,
    ],
    ['an unknown min_version', 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: SSL3\n', /invalid min_version "SSL3"/],
  ];
  for (const [what, text, message] of broken) {
    it(`refuses a config with ${what} at start: one line, exit 2`, () => {
      writeFileSync(file('broken.yml'), text);
      const { status, stderr } = runCli(['serve', '--web.config.file', file('broken.yml')]);
      assert.equal(status, 2, stderr);
      assert.match(stderr, /^sockmon: --web\.config\.file: web config "[^"]+": [^\n]+\n$/);
      assert.match(stderr, message);
    });
  }
});

describe('HTTP limits: hostile clients', function () {
  let served: Served;

  before(async () => {
    served = await serveWith();
  });
  after(async () => {
    served.child.kill('SIGTERM');
    await exited(served.child);
  });

  it('refuses a 64 KiB request header with 431', async () => {
    const response = await fetch(`http://127.0.0.1:${served.port}/metrics`, { headers: { 'X-Padding': 'x'.repeat(64 * 1024) } });
    assert.equal(response.status, 431);
  });

  it('only answers GET and HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const response = await fetch(`http://127.0.0.1:${served.port}/metrics`, { method });
      assert.equal(response.status, 405, method);
      assert.doesNotMatch(await response.text(), /at |Error/);
    }
  });

  it('still answers a scrape while 300 idle and 100 slow clients hold connections', async () => {
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 400; i++) {
        const socket = net.connect(served.port, '127.0.0.1');
        socket.on('error', () => {});
        // The slow ones send their request head a byte at a time and never finish it.
        if (i >= 300) socket.once('connect', () => socket.write('GET /metrics HTTP/1.1\r\nX-Slow: '));
        sockets.push(socket);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      const response = await fetch(`http://127.0.0.1:${served.port}/metrics`, { signal: AbortSignal.timeout(20_000) });
      assert.equal(response.status, 200);
      assert.match(await response.text(), /^sockmon_up 1$/m);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it('closes a client that never finishes its request head (headersTimeout)', async function () {
    this.timeout(30_000);
    const closedAfter = await new Promise<number>((resolve) => {
      const started = Date.now();
      const socket = net.connect(served.port, '127.0.0.1', () => socket.write('GET /metrics HTTP/1.1\r\n'));
      socket.resume(); // read, so that the server's close is seen
      socket.on('error', () => {});
      socket.on('close', () => resolve(Date.now() - started));
    });
    assert.ok(closedAfter < 25_000, `closed after ${closedAfter} ms`);
  });
});
