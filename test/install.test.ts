// The systemd unit and the scripted install, into a temporary root (DESTDIR): nothing on the machine changes.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'install-service.sh');

describe('install: sockmon as a systemd service', () => {
  let destdir: string;
  const install = (...args: string[]) => execFileSync('bash', [SCRIPT, ...args], { env: { ...process.env, DESTDIR: destdir }, encoding: 'utf8' });
  const unitFile = () => path.join(destdir, 'etc/systemd/system/sockmon.service');

  before(() => {
    destdir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-destdir-'));
    install();
  });
  after(() => rmSync(destdir, { recursive: true, force: true }));

  it("installs a unit whose ExecStart points at files that exist, and the installed CLI runs", () => {
    const execStart = /^ExecStart=(\S+) (\S+) serve \$SOCKMON_ARGS$/m.exec(readFileSync(unitFile(), 'utf8'));
    assert.ok(execStart, 'ExecStart line');
    assert.ok(existsSync(execStart[1]), `${execStart[1]} (node) exists`);
    const cli = path.join(destdir, execStart[2]);
    assert.ok(existsSync(cli), `${cli} exists`);
    const out = execFileSync(process.execPath, [cli, 'snapshot', '--json', '--cidr', '127.0.0.1', '--port', '1'], { encoding: 'utf8' });
    assert.deepEqual(Object.keys(JSON.parse(out)), ['scanned', 'connections', 'listeners']);
  });

  it('installs the defaults file once, keeping an operator\'s edits on reinstall', () => {
    const defaults = path.join(destdir, 'etc/default/sockmon');
    assert.match(readFileSync(defaults, 'utf8'), /^SOCKMON_ARGS="--cidr 203\.0\.113\.96\/27/m);
    writeFileSync(defaults, 'SOCKMON_ARGS="--port 8080"\n');
    install();
    assert.equal(readFileSync(defaults, 'utf8'), 'SOCKMON_ARGS="--port 8080"\n');
  });

  it('passes systemd-analyze verify, with a security exposure of at most 2.0', function () {
    if (spawnSync('systemd-analyze', ['--version']).error) {
      if (process.env.CI) throw new Error('systemd-analyze is missing (apt-get install systemd)');
      this.skip();
    }
    const verify = spawnSync('systemd-analyze', ['verify', unitFile()], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'no warnings');
    const security = spawnSync('systemd-analyze', ['security', '--offline=true', unitFile()], { encoding: 'utf8' });
    const exposure = /Overall exposure level for sockmon\.service: ([\d.]+)/.exec(security.stdout);
    assert.ok(exposure, security.stdout + security.stderr);
    assert.ok(Number(exposure[1]) <= 2.0, `exposure ${exposure[1]}`);
    const unit = readFileSync(unitFile(), 'utf8');
    assert.match(unit, /^Type=notify$/m);
    assert.match(unit, /^DynamicUser=yes$/m);
    assert.match(unit, /^RestrictAddressFamilies=.*AF_NETLINK/m);
    assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=yes/m);
  });

  it('uninstalls the package and the unit, keeping the defaults file unless purged', () => {
    install('--uninstall');
    assert.ok(!existsSync(unitFile()));
    assert.ok(!existsSync(path.join(destdir, 'opt/sockmon')));
    assert.ok(existsSync(path.join(destdir, 'etc/default/sockmon')));
    install('--uninstall', '--purge');
    assert.ok(!existsSync(path.join(destdir, 'etc/default/sockmon')));
  });
});
