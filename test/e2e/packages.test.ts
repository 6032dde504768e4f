// The OS packages as an operator meets them, under a real systemd and real package managers: `npm run package`'s
// .deb and .rpm of the release tarball (and of the same tarball under the next version, for the upgrades), in a
// systemd-nspawn container (Debian bookworm minbase: no Node.js, no compiler, no python, no network). The .deb: apt
// offline, the service enabled and serving, `sockmon snapshot`, an upgrade keeping the edited conffile, remove, purge.
// The .rpm: its metadata, then Debian's rpm installing, upgrading and erasing it under the same systemd. A truncated
// or corrupted package is refused by the package manager and changes nothing.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Container, containerRoot, heldConnectionScript } from '../helpers/container';
import { buildPackages, nextPatch, reversionedTarball, runPackager, temporaryDirectory } from '../helpers/packages';
import { CHECKOUT, releaseTarball, VERSION } from '../helpers/release';
import { skipBecause } from '../helpers/prerequisites';

const PORT = 8080; // the watched port inside the container
const METRICS = 'http://127.0.0.1:19469/metrics';
const NODE = '/usr/lib/sockmon/node/bin/node';
const NEXT = nextPatch(VERSION);
/**
 * Where a package's files could be, compared before the install and after the purge. dpkg's and apt's own
 * databases are left out (dpkg-query says what they hold), and so are systemd's timer stamps (written by timers).
 */
const LISTED =
  'find /etc /usr /opt /var/lib -xdev \\( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/rpm -o -path /var/lib/systemd/timers \\) -prune -o -print | sort';
const PINNED_NODE = `v${execFileSync('bash', [path.join(CHECKOUT, 'scripts', 'node-runtime.sh'), '--version'], { encoding: 'utf8' }).trim()}`;
const CLI = JSON.parse(readFileSync(path.join(CHECKOUT, 'package.json'), 'utf8')).bin.sockmon as string;

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'root';
  for (const tool of ['systemd-nspawn', 'debootstrap', 'nsenter', 'dpkg-deb', 'rpmbuild', 'rpm', 'readelf']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return tool;
  }
  return undefined;
}

const connectionCounted = new RegExp(`^sockmon_tcp_connections\\{peer="127\\.0\\.0\\.1",local_port="${PORT}",state="established"\\} 1$`, 'm');
const buildInfo = (version: string) => new RegExp(`^sockmon_build_info\\{version="${version.replace(/\./g, '\\.')}",nodejs="${PINNED_NODE}"\\} 1$`, 'm');
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A copy of `file` cut to half its size, or with a run of bytes in its payload overwritten. */
function damaged(file: string, how: 'truncated' | 'corrupted', dir: string): string {
  const out = path.join(dir, `${how}-${path.basename(file)}`);
  copyFileSync(file, out);
  const data = readFileSync(out);
  if (how === 'truncated') writeFileSync(out, data.subarray(0, Math.floor(data.length / 2)));
  else {
    data.fill(0x55, Math.floor(data.length * 0.6), Math.floor(data.length * 0.6) + 4096);
    writeFileSync(out, data);
  }
  return out;
}

describe('e2e: the .deb and .rpm under a real systemd (systemd-nspawn, apt, rpm)', function () {
  this.timeout(600_000);
  let container: Container | undefined;
  let packages: { deb: string; rpm: string; nextDeb: string; nextRpm: string };
  /** Bound into the container as /pkg: current/ and next/ (the packages), damaged/ (their broken copies). */
  let work: string;
  let pristine: string;
  const inside = (file: string) => `/pkg/${path.relative(work, file)}`;
  const damagedDir = () => path.join(work, 'damaged');
  const unitProperty = (name: string) => container!.unitProperty('sockmon', name);
  const setSetting = (file: string, name: string, value: string) =>
    container!.ok(`sed -i 's|^#*${name}=.*|${name}=${value}|' ${file} && grep -qx '${name}=${value}' ${file}`);
  const dpkgStatus = () => container!.run("dpkg-query -W -f '${db:Status-Abbrev}' sockmon").stdout.trim();

  before(async function () {
    const missing = missingPrerequisite();
    if (missing) skipBecause(this, `needs ${missing} (apt-get install systemd-container debootstrap dpkg-dev rpm binutils; run as root)`);
    const root = containerRoot('base');
    const tarball = releaseTarball();
    work = temporaryDirectory('sockmon-packages-e2e-');
    mkdirSync(damagedDir());
    let started = Date.now();
    const [deb, rpm] = buildPackages(tarball, 'x64', path.join(work, 'current'));
    console.log(`      npm run package (x64 .deb and .rpm, from the packed tarball): ${seconds(Date.now() - started)}`);
    started = Date.now();
    // The upgrade's package: its compression is not what the upgrade tests (and xz costs a minute or more here).
    const [nextDeb, nextRpm] = buildPackages(reversionedTarball(tarball, NEXT), 'x64', path.join(work, 'next'), true);
    console.log(`      the same at ${NEXT} (--fast: gzip -1): ${seconds(Date.now() - started)}`);
    packages = { deb, rpm, nextDeb, nextRpm };
    for (const file of [deb, rpm]) console.log(`      ${path.basename(file)}: ${(statSync(file).size / 1e6).toFixed(1)} MB`);
    container = await Container.boot(root, { [work]: '/pkg' });
  });

  after(async function () {
    this.timeout(60_000);
    await container?.powerOff();
  });

  it('has a container without Node.js, compiler or python, and a .deb declaring its architecture and libraries', () => {
    const tools = container!.run('for tool in node nodejs npm cc gcc c++ g++ make python3 python; do command -v $tool; done');
    assert.equal(tools.stdout, '', `found in the container: ${tools.stdout}`);
    const control = execFileSync('dpkg-deb', ['--field', packages.deb], { encoding: 'utf8' });
    assert.match(control, /^Architecture: amd64$/m);
    assert.match(control, /^Depends: libc6 \(>= 2\.[0-9]+\), libstdc\+\+6 \(>= [0-9.]+\), libgcc-s1 \| libgcc1, init-system-helpers \(>= 1\.54~\)$/m);
    assert.equal(execFileSync('dpkg-deb', ['--field', packages.deb, 'Version'], { encoding: 'utf8' }).trim(), `${VERSION}-1`);
    const conffiles = execFileSync('sh', ['-c', `dpkg-deb --ctrl-tarfile ${packages.deb} | tar -xOf - ./conffiles`], { encoding: 'utf8' });
    assert.equal(conffiles, '/etc/default/sockmon\n');
    pristine = container!.ok(LISTED);
  });

  it("refuses a truncated .deb with apt/dpkg-deb's own error, changing nothing", () => {
    const truncated = damaged(packages.deb, 'truncated', damagedDir());
    const result = container!.run(`apt-get install -y ${inside(truncated)}`);
    console.log(`      apt-get install of a truncated .deb: exit ${result.status}: ${result.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    assert.notEqual(result.status, 0);
    assert.match(result.stdout + result.stderr, /dpkg-deb|unexpected end of file|[Ii]nvalid archive|corrupt/);
    assert.doesNotMatch(dpkgStatus(), /^[iurhct][A-Z]/, `dpkg's status for sockmon: ${dpkgStatus()}`);
    assert.equal(container!.ok(LISTED), pristine);
  });

  let installStarted = 0;

  it("installs offline with apt-get, enabled and started at once (Debian's habit), serving /metrics", async () => {
    installStarted = Date.now();
    container!.ok(`apt-get install -y --no-install-recommends ${inside(packages.deb)}`);
    const installed = Date.now();
    await container!.waitFor(`curl -sf ${METRICS}`, /^sockmon_up 1$/m);
    console.log(`      apt-get install: ${seconds(installed - installStarted)}; to a serving unit: ${seconds(Date.now() - installStarted)}`);
    assert.equal(dpkgStatus(), 'ii');
    assert.equal(container!.ok('systemctl is-enabled sockmon').trim(), 'enabled');
    assert.equal(unitProperty('ActiveState'), 'active');
    assert.equal(unitProperty('FragmentPath'), '/lib/systemd/system/sockmon.service');
    assert.equal(container!.ok(`readlink /proc/${unitProperty('MainPID')}/exe`).trim(), NODE);
    assert.equal(unitProperty('DynamicUser'), 'yes');
    assert.match(container!.ok('systemctl cat sockmon'), new RegExp(`^ExecStart=${NODE} /usr/lib/sockmon/app/${path.posix.normalize(CLI)} serve$`, 'm'));
    assert.match(container!.ok('systemctl cat sockmon'), /^EnvironmentFile=-\/etc\/default\/sockmon$/m);
    // sockmon_build_info says which Node.js the package carries: the pinned one.
    assert.match(container!.ok(`curl -sf ${METRICS}`), buildInfo(VERSION));
    assert.equal(container!.ok('stat -c "%a %U" /etc/sockmon').trim(), '700 root');
    assert.equal(container!.ok('ls /usr/share/man/man1/sockmon.1.gz /usr/share/sockmon/rules/sockmon-alerts.yml | wc -l').trim(), '2');
  });

  it('counts a connection on /metrics after a change to /etc/default/sockmon, and `sockmon snapshot` works from a shell', async () => {
    setSetting('/etc/default/sockmon', 'SOCKMON_CIDR', '127.0.0.0/8');
    setSetting('/etc/default/sockmon', 'SOCKMON_PORT', String(PORT));
    setSetting('/etc/default/sockmon', 'SOCKMON_WEB_LISTEN_ADDRESS', '127.0.0.1:19469');
    container!.ok('systemctl restart sockmon');
    // The peer runs on the package's Node.js: the container has no other.
    container!.ok(`systemd-run --unit=sockmon-e2e-peer ${NODE} -e "${heldConnectionScript(PORT)}"`);
    await container!.waitFor(`curl -sf ${METRICS}`, connectionCounted);
    assert.equal(container!.ok('sockmon --version').trim(), VERSION);
    const snapshot = container!.ok(`sockmon snapshot --cidr 127.0.0.0/8 --port ${PORT}`);
    assert.match(snapshot, new RegExp(`^127\\.0\\.0\\.1 +${PORT} +1 `, 'm'), snapshot);
  });

  it('upgrades to a higher version: the edited conffile kept, the running service restarted on the new version', async () => {
    const pid = unitProperty('MainPID');
    const started = Date.now();
    container!.ok(`apt-get install -y --no-install-recommends ${inside(packages.nextDeb)}`);
    console.log(`      apt-get install of ${NEXT} over ${VERSION}: ${seconds(Date.now() - started)}`);
    assert.equal(container!.ok("dpkg-query -W -f '${Version}' sockmon"), `${NEXT}-1`);
    assert.equal(container!.ok('grep -E "^SOCKMON_(CIDR|PORT)=" /etc/default/sockmon'), `SOCKMON_CIDR=127.0.0.0/8\nSOCKMON_PORT=${PORT}\n`);
    assert.equal(container!.run('ls /etc/default/sockmon.dpkg-*').status, 2, 'no .dpkg-dist or .dpkg-old beside the conffile');
    assert.equal(unitProperty('ActiveState'), 'active');
    assert.notEqual(unitProperty('MainPID'), pid, 'restarted');
    assert.equal(container!.ok('systemctl is-enabled sockmon').trim(), 'enabled');
    await container!.waitFor(`curl -sf ${METRICS}`, buildInfo(NEXT));
    await container!.waitFor(`curl -sf ${METRICS}`, connectionCounted);
    assert.equal(container!.ok('sockmon --version').trim(), NEXT);
  });

  it('removes with apt-get remove: the service stopped and gone, the configuration kept', () => {
    container!.ok('systemctl stop sockmon-e2e-peer');
    container!.ok('printf "not a real key\\n" > /etc/sockmon/sockmon.key && chmod 600 /etc/sockmon/sockmon.key');
    container!.ok('apt-get remove -y sockmon');
    assert.equal(dpkgStatus(), 'rc');
    assert.notEqual(container!.run('systemctl is-active sockmon').status, 0);
    assert.notEqual(container!.run(`curl -sf ${METRICS}`).status, 0, 'nothing serves /metrics');
    assert.match(container!.run('systemctl is-enabled sockmon').stdout.trim(), /^(masked|not-found|)$/);
    assert.equal(container!.run('ls /usr/bin/sockmon /usr/lib/sockmon /lib/systemd/system/sockmon.service 2>/dev/null').stdout, '');
    assert.match(container!.ok('cat /etc/default/sockmon'), new RegExp(`^SOCKMON_PORT=${PORT}$`, 'm'));
    assert.equal(container!.ok('cat /etc/sockmon/sockmon.key'), 'not a real key\n');
  });

  it('purges with apt-get purge: nothing of the package left (the file list as before the install)', () => {
    container!.ok('apt-get purge -y sockmon');
    assert.equal(dpkgStatus(), '');
    const after = container!.ok(LISTED);
    const before = new Set(pristine.split('\n'));
    const added = after.split('\n').filter((line) => !before.has(line));
    console.log(
      `      after purge: ${added.length} paths more, ${pristine.split('\n').length - (after.split('\n').length - added.length)} fewer than before the install`,
    );
    assert.equal(after, pristine);
  });

  it("installs without starting where the host's policy-rc.d says no (deb-systemd-invoke asks it), and purges clean", () => {
    container!.ok('printf "#!/bin/sh\\nexit 101\\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d');
    container!.ok(`apt-get install -y --no-install-recommends ${inside(packages.deb)}`);
    assert.equal(dpkgStatus(), 'ii');
    assert.equal(container!.ok('systemctl is-enabled sockmon').trim(), 'enabled');
    assert.equal(unitProperty('ActiveState'), 'inactive');
    container!.ok('apt-get purge -y sockmon && rm /usr/sbin/policy-rc.d');
    assert.equal(container!.ok(LISTED), pristine);
  });

  it('has an .rpm whose contents, requirements and scriptlets are those of the description', () => {
    const query = (...args: string[]) => execFileSync('rpm', ['-qp', ...args, packages.rpm], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.equal(query('--qf', '%{NAME} %{VERSION} %{RELEASE} %{ARCH}'), `sockmon ${VERSION} 1 x86_64`);
    const list = query('--list').split('\n');
    for (const file of [
      '/usr/bin/sockmon',
      NODE,
      '/usr/lib/systemd/system/sockmon.service',
      '/etc/sysconfig/sockmon',
      '/etc/sockmon',
      '/usr/share/man/man1/sockmon.1.gz',
      '/usr/share/sockmon/rules/sockmon-alerts.yml',
      '/usr/lib/sockmon/app/prebuilds/linux-x64/sockmon.glibc.node',
    ]) {
      assert.ok(list.includes(file), `${file} in the .rpm`);
    }
    assert.ok(!list.some((file) => file.startsWith('/etc/default') || file.includes('install-service')), 'no Debian paths, no shell installer');
    assert.equal(query('--configfiles'), '/etc/sysconfig/sockmon\n');
    const requires = query('--requires').split('\n');
    assert.ok(requires.includes('libc.so.6(GLIBC_2.28)(64bit)'), 'glibc 2.28 (Node.js)');
    for (const library of ['libstdc++.so.6()(64bit)', 'libgcc_s.so.1()(64bit)', 'systemd']) assert.ok(requires.includes(library), library);
    assert.ok(!requires.some((item) => /node/.test(item)), 'no Node.js from the host');
    const scripts = query('--scripts');
    assert.match(scripts, /^postinstall scriptlet[\s\S]*systemctl --no-reload preset sockmon\.service/m);
    assert.match(scripts, /^preuninstall scriptlet[\s\S]*systemctl --no-reload disable --now sockmon\.service/m);
    assert.match(scripts, /^postuninstall scriptlet[\s\S]*systemctl try-restart sockmon\.service/m);
    assert.match(query('--qf', '[%{FILEMODES:perms} %{FILENAMES}\n]'), /^drwx------ \/etc\/sockmon$/m);
  });

  it("refuses a truncated and a corrupted .rpm with rpm's own error, changing nothing", () => {
    const before = container!.ok(LISTED);
    for (const how of ['truncated', 'corrupted'] as const) {
      const result = container!.run(`rpm -i --nodeps ${inside(damaged(packages.rpm, how, damagedDir()))}`);
      console.log(`      rpm -i of a ${how} .rpm: exit ${result.status}: ${result.stderr.trim().split('\n').slice(-2).join(' | ')}`);
      assert.notEqual(result.status, 0);
      // Debian's rpm warns first that it is not its package manager; then rpm's own verdict.
      assert.match(result.stderr, /^error: |does not verify: .*: BAD/m);
      assert.notEqual(container!.run('rpm -q sockmon').status, 0);
    }
    assert.equal(container!.ok(LISTED), before);
  });

  it('installs the .rpm with rpm under systemd: preset policy applied (nothing enabled), starts when asked', async () => {
    // Fedora's and RHEL's policy for units they do not name (their 99-default-disable.preset): disable.
    container!.ok('mkdir -p /etc/systemd/system-preset && echo "disable *" > /etc/systemd/system-preset/99-default-disable.preset');
    // An enable link left from elsewhere: %post's `systemctl preset` applies the policy and removes it.
    container!.ok(
      'mkdir -p /etc/systemd/system/multi-user.target.wants && ln -s /usr/lib/systemd/system/sockmon.service /etc/systemd/system/multi-user.target.wants/',
    );
    const started = Date.now();
    const install = container!.ok(`rpm -i --nodeps -vv ${inside(packages.rpm)} 2>&1`);
    assert.match(install, /%post\(sockmon-[^)]+\): waitpid\(\d+\) rc \d+ status 0/);
    assert.equal(container!.run('systemctl is-enabled sockmon').stdout.trim(), 'disabled');
    assert.equal(unitProperty('ActiveState'), 'inactive');
    assert.match(container!.ok('systemctl cat sockmon'), /^EnvironmentFile=-\/etc\/sysconfig\/sockmon$/m);
    const manPage = container!.ok('zcat /usr/share/man/man1/sockmon.1.gz');
    assert.match(manPage, /\/etc\/sysconfig\/sockmon/);
    assert.doesNotMatch(manPage, /\/etc\/default\/sockmon/);
    setSetting('/etc/sysconfig/sockmon', 'SOCKMON_WEB_LISTEN_ADDRESS', '127.0.0.1:19469');
    container!.ok('systemctl enable --now sockmon');
    await container!.waitFor(`curl -sf ${METRICS}`, buildInfo(VERSION));
    console.log(`      rpm -i to a serving unit (with systemctl enable --now): ${seconds(Date.now() - started)}`);
    assert.equal(container!.ok(`readlink /proc/${unitProperty('MainPID')}/exe`).trim(), NODE);
  });

  it('upgrades the .rpm with rpm -U: the edited %config(noreplace) file kept, the service restarted', async () => {
    const pid = unitProperty('MainPID');
    container!.ok(`rpm -U --nodeps ${inside(packages.nextRpm)}`);
    assert.equal(container!.ok("rpm -q --qf '%{VERSION}' sockmon"), NEXT);
    assert.match(container!.ok('cat /etc/sysconfig/sockmon'), /^SOCKMON_WEB_LISTEN_ADDRESS=127\.0\.0\.1:19469$/m);
    assert.equal(container!.run('ls /etc/sysconfig/sockmon.rpm*').status, 2, 'no .rpmnew or .rpmsave');
    assert.notEqual(unitProperty('MainPID'), pid, 'restarted');
    await container!.waitFor(`curl -sf ${METRICS}`, buildInfo(NEXT));
  });

  it('erases the .rpm: stopped and disabled, the edited configuration saved as .rpmsave', () => {
    container!.ok('rpm -e --nodeps sockmon');
    assert.notEqual(container!.run('rpm -q sockmon').status, 0);
    assert.notEqual(container!.run('systemctl is-active sockmon').status, 0);
    assert.equal(container!.run('ls /etc/systemd/system/multi-user.target.wants/sockmon.service /usr/lib/sockmon 2>/dev/null').stdout, '');
    assert.match(container!.ok('cat /etc/sysconfig/sockmon.rpmsave'), /^SOCKMON_WEB_LISTEN_ADDRESS=127\.0\.0\.1:19469$/m);
  });

  it('makes arm64 packages when the tarball has an arm64 prebuilt addon, and says clearly when it has none', () => {
    const tarball = releaseTarball();
    if (execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).includes('package/prebuilds/linux-arm64/')) {
      const [deb, rpm] = buildPackages(tarball, 'arm64', path.join(work, 'arm64'), true);
      assert.equal(execFileSync('dpkg-deb', ['--field', deb, 'Architecture'], { encoding: 'utf8' }).trim(), 'arm64');
      assert.equal(execFileSync('rpm', ['-qp', '--qf', '%{ARCH}', rpm], { encoding: 'utf8' }), 'aarch64');
      assert.match(execFileSync('rpm', ['-qp', '--requires', rpm], { encoding: 'utf8' }), /^ld-linux-aarch64\.so\.1/m);
      console.log(
        `      arm64: ${path.basename(deb)} ${(statSync(deb).size / 1e6).toFixed(1)} MB, ${path.basename(rpm)} ${(statSync(rpm).size / 1e6).toFixed(1)} MB`,
      );
    } else {
      const result = runPackager(['--tarball', tarball, '--arch', 'arm64', '--out', path.join(work, 'arm64')]);
      assert.equal(result.status, 1);
      assert.match(result.stderr, /has no prebuilt addon for linux-arm64/);
      console.log('      the release tarball has no arm64 prebuilt addon: no arm64 packages');
    }
  });
});
