// The release as an operator meets it, under a real systemd: `npm pack` here, then in a systemd-nspawn container
// (Debian bookworm minbase: node and npm, no compiler, no python, no network) an offline install of the tarball,
// `npm run install-service` from the installed package, and the unit's whole life: start, scrape, reload, a bad
// setting, the TLS recipe of docs/security.md with root-only files, stop, uninstall.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Container, containerRoot, heldConnectionScript } from '../helpers/container';
import { CHECKOUT, releaseTarball, VERSION } from '../helpers/release';
import { skipBecause } from '../helpers/prerequisites';

const PACKAGE = '/usr/lib/node_modules/sockmon';
const PORT = 8080; // the watched port inside the container
const METRICS = 'http://127.0.0.1:19469/metrics';
/** Where sockmon's files could be: compared before the install and after the uninstall. */
const LISTED = 'find /etc /usr /opt /var/lib -xdev \\( -path /var/lib/systemd -o -path /var/lib/dpkg \\) -prune -o -print | sort';

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'root';
  for (const tool of ['systemd-nspawn', 'debootstrap', 'nsenter', 'htpasswd']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return tool;
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The shell block after the `<!-- e2e: tls-recipe -->` marker in docs/security.md. */
function readmeTlsRecipe(): string {
  const page = readFileSync(path.join(CHECKOUT, 'docs', 'security.md'), 'utf8');
  const match = /<!-- e2e: tls-recipe -->\s*```sh\n([\s\S]*?)```/.exec(page);
  assert.ok(match, 'docs/security.md has the TLS recipe');
  return match[1];
}

describe('e2e: the release tarball under a real systemd (systemd-nspawn)', function () {
  this.timeout(300_000);
  let container: Container | undefined;
  let tarball: string;
  let beforeInstall: string;

  const until = (command: string, pattern: RegExp, timeoutMs?: number) => container!.waitFor(command, pattern, timeoutMs);
  const unitProperty = (name: string) => container!.unitProperty('sockmon', name);
  const setDefault = (name: string, value: string) =>
    container!.ok(`sed -i 's|^#*${name}=.*|${name}=${value}|' /etc/default/sockmon && grep -qx '${name}=${value}' /etc/default/sockmon`);

  before(async function () {
    const missing = missingPrerequisite();
    if (missing) skipBecause(this, `needs ${missing} (apt-get install systemd-container debootstrap apache2-utils; run as root)`);
    const root = containerRoot();
    const packed = releaseTarball();
    tarball = path.basename(packed);
    console.log(`      release tarball: ${tarball}, ${(statSync(packed).size / 1024).toFixed(0)} KiB`);
    container = await Container.boot(root, { [path.dirname(packed)]: '/pkg' });
  });

  after(async function () {
    this.timeout(60_000);
    await container?.powerOff();
  });

  let installStarted = 0;

  it('installs the tarball offline on a host without compiler or python, building nothing', () => {
    const tools = container!.run('for tool in cc gcc c++ g++ make python3 python; do command -v $tool; done');
    assert.equal(tools.stdout, '', `build tools in the container: ${tools.stdout}`);
    installStarted = Date.now();
    container!.ok(`npm install -g --offline --no-audit --no-fund /pkg/${tarball}`);
    console.log(`      npm install -g --offline: ${((Date.now() - installStarted) / 1000).toFixed(1)} s`);
    assert.equal(container!.ok('sockmon --version').trim(), VERSION);
    assert.equal(container!.run(`test -e ${PACKAGE}/build`).status, 1, 'nothing was compiled');
    assert.match(container!.ok(`ls ${PACKAGE}/prebuilds/linux-x64`), /^sockmon\.glibc\.node$/m);
  });

  it('installs the service from the installed package and serves /metrics once started', async () => {
    beforeInstall = container!.ok(LISTED);
    const serviceStarted = Date.now();
    const installed = container!.ok(`cd ${PACKAGE} && npm run install-service`);
    console.log(`      npm run install-service: ${((Date.now() - serviceStarted) / 1000).toFixed(1)} s`);
    assert.match(installed, /start it with: systemctl enable --now sockmon/);
    // The operator edits the settings in place, one variable per line.
    setDefault('SOCKMON_CIDR', '127.0.0.0/8');
    setDefault('SOCKMON_PORT', String(PORT));
    setDefault('SOCKMON_WEB_LISTEN_ADDRESS', '127.0.0.1:19469');
    setDefault('SOCKMON_LOG_LEVEL', 'debug');
    container!.ok('systemctl enable --now sockmon');
    await until(`curl -sf ${METRICS}`, /^sockmon_up 1$/m);
    console.log(`      from npm install -g to a serving unit: ${((Date.now() - installStarted) / 1000).toFixed(1)} s`);
    assert.equal(unitProperty('ActiveState'), 'active');
    assert.match(container!.ok('man -w sockmon 2>/dev/null || ls /usr/local/share/man/man1/sockmon.1'), /sockmon\.1/);
  });

  it('counts a connection made inside the container, and logs each dump at debug priority', async () => {
    // A server on the watched port and one client connected to it, held open by a transient unit.
    container!.ok(`systemd-run --unit=sockmon-e2e-peer /usr/bin/node -e "${heldConnectionScript(PORT)}"`);
    await until(`curl -sf ${METRICS}`, new RegExp(`^sockmon_tcp_connections\\{peer="127\\.0\\.0\\.1",local_port="${PORT}",state="established"\\} 1$`, 'm'));
    assert.match(container!.ok('journalctl -t sockmon -p debug..debug -o cat'), /^level=debug msg=dump sockets=\d+ .*duration_ms=[\d.]+$/m);
    assert.match(container!.ok('journalctl -t sockmon -p info..info -o cat'), /^level=info msg=listening address=127\.0\.0\.1:19469/m);
  });

  it('reloads (SIGHUP) without a new process', async () => {
    const pid = unitProperty('MainPID');
    container!.ok('systemctl reload sockmon');
    await sleep(1000);
    assert.equal(unitProperty('ActiveState'), 'active');
    assert.equal(unitProperty('MainPID'), pid);
    assert.match(container!.ok('journalctl -t sockmon -p info..info -o cat'), /^level=info msg="SIGHUP: no --web.config.file, nothing to reload"$/m);
    await until(`curl -sf ${METRICS}`, /^sockmon_up 1$/m);
  });

  it('restarts the running service when installed again, keeping the settings', async () => {
    const pid = unitProperty('MainPID');
    const again = container!.ok(`cd ${PACKAGE} && npm run install-service`);
    assert.match(again, /the running service was restarted on the new version/);
    assert.equal(unitProperty('ActiveState'), 'active');
    assert.notEqual(unitProperty('MainPID'), pid);
    assert.match(container!.ok('cat /etc/default/sockmon'), new RegExp(`^SOCKMON_PORT=${PORT}$`, 'm'));
    await until(`curl -sf ${METRICS}`, new RegExp(`^sockmon_tcp_connections\\{peer="127\\.0\\.0\\.1",local_port="${PORT}",state="established"\\} 1$`, 'm'));
  });

  it('ends in failed at once on a bad setting, its error at journal priority err', async () => {
    setDefault('SOCKMON_PORT', '99999');
    assert.notEqual(container!.run('systemctl restart sockmon').status, 0);
    await sleep(3000); // more than RestartSec: a restart would have happened by now
    assert.equal(unitProperty('ActiveState'), 'failed');
    assert.ok(Number(unitProperty('NRestarts')) <= 1, `NRestarts ${unitProperty('NRestarts')}`);
    assert.equal(unitProperty('ExecMainStatus'), '2');
    assert.match(container!.ok('journalctl -t sockmon -p err -o cat'), /^sockmon: --port: invalid port "99999"/m);
    setDefault('SOCKMON_PORT', String(PORT));
    container!.ok('systemctl reset-failed sockmon && systemctl start sockmon');
    await until(`curl -sf ${METRICS}`, /^sockmon_up 1$/m);
  });

  it('ends in failed at once where the addon cannot load (exit 3), its one line at journal priority err', async () => {
    // SOCKMON_PREBUILD (node-gyp-build's) points the loader at an empty directory: a host with no addon for it.
    container!.ok('echo SOCKMON_PREBUILD=/nonexistent >> /etc/default/sockmon');
    assert.notEqual(container!.run('systemctl restart sockmon').status, 0);
    await sleep(3000); // more than RestartSec: a restart would have happened by now
    assert.equal(unitProperty('ActiveState'), 'failed');
    assert.ok(Number(unitProperty('NRestarts')) <= 1, `NRestarts ${unitProperty('NRestarts')}`);
    assert.equal(unitProperty('ExecMainStatus'), '3');
    assert.match(
      container!.ok('journalctl -t sockmon -p err -o cat'),
      /^sockmon: error: cannot load the native addon: looked for .*prebuilds\/linux-x64\/sockmon\.glibc\.node in \/nonexistent /m,
    );
    container!.ok("sed -i '/^SOCKMON_PREBUILD=/d' /etc/default/sockmon");
    container!.ok('systemctl reset-failed sockmon && systemctl start sockmon');
    await until(`curl -sf ${METRICS}`, /^sockmon_up 1$/m);
  });

  it("serves HTTPS with basic auth from docs/security.md's recipe, the key and web config root-only", async () => {
    const hash = execFileSync('htpasswd', ['-nbBC', '10', 'prometheus', 'e2e-secret'], { encoding: 'utf8' }).trim().split(':')[1];
    const recipe = readmeTlsRecipe().replace('$2y$10$REPLACE_WITH_THE_HASH_HTPASSWD_PRINTED', hash);
    assert.notEqual(recipe, readmeTlsRecipe(), 'the recipe has the hash placeholder');
    container!.ok(`set -e\n${recipe}`);
    assert.equal(container!.ok('stat -c "%a %U" /etc/sockmon/sockmon.key /etc/sockmon/web.yml /etc/sockmon').trim(), '600 root\n600 root\n700 root');
    const https = `curl -s --cacert /etc/sockmon/sockmon.crt --resolve backend1.example.com:19469:127.0.0.1 https://backend1.example.com:19469/metrics`;
    await until(`${https} --user prometheus:e2e-secret`, /^sockmon_up 1$/m);
    assert.equal(container!.ok(`${https} -o /dev/null -w '%{http_code}'`), '401');
    assert.equal(container!.ok(`${https} --user prometheus:wrong -o /dev/null -w '%{http_code}'`), '401');
    assert.notEqual(container!.run(`curl -sf ${METRICS}`).status, 0, 'no plain HTTP');
    // A reload re-reads the web config (the credential copy of the root-only file) in the same process.
    const pid = unitProperty('MainPID');
    container!.ok('systemctl reload sockmon');
    await until('journalctl -t sockmon -p info..info -o cat', /^level=info msg="web config reloaded" trigger=SIGHUP file=\/etc\/sockmon\/web\.yml/m);
    assert.equal(unitProperty('MainPID'), pid);
    await until(`${https} --user prometheus:e2e-secret`, /^sockmon_up 1$/m);
  });

  it('stops cleanly: systemctl stop, exit status 0', () => {
    container!.ok('systemctl stop sockmon');
    assert.equal(unitProperty('ActiveState'), 'inactive');
    assert.equal(unitProperty('Result'), 'success');
    assert.equal(unitProperty('ExecMainStatus'), '0');
  });

  it("uninstalls with --purge leaving nothing of sockmon's", () => {
    container!.ok(
      'mkdir -p /etc/systemd/system/sockmon.service.d && printf "[Service]\\nEnvironment=X=1\\n" > /etc/systemd/system/sockmon.service.d/override.conf',
    );
    container!.ok(`cd ${PACKAGE} && npm run uninstall-service -- --purge`);
    container!.ok('systemctl stop sockmon-e2e-peer');
    assert.equal(container!.ok(LISTED), beforeInstall);
    assert.equal(container!.run('systemctl cat sockmon').status, 1);
  });
});
