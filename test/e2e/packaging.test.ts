// The packager's pure parts and its command line, without root and without building a package: the packaged unit
// rendered from systemd/sockmon.service, versions as dpkg and rpm order them, the description, bad arguments.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadDescription, packageVersion } from '../../scripts/packaging/description';
import { libstdcxxRelease } from '../../scripts/packaging/elf';
import { commandWrapper, packagedUnit } from '../../scripts/packaging/layout';
import { CHECKOUT } from '../helpers/release';

const PACKAGER = path.join(CHECKOUT, 'dist', 'scripts', 'package.js');
const UNIT = readFileSync(path.join(CHECKOUT, 'systemd', 'sockmon.service'), 'utf8');

describe('packaging: the unit, versions and the command line of npm run package', () => {
  it('renders the unit with the bundled Node.js, the CLI and the format settings file, the rest unchanged', () => {
    const unit = packagedUnit(UNIT, '/usr/lib/sockmon/node/bin/node', '/usr/lib/sockmon/app/dist/src/cli.js', '/etc/sysconfig/sockmon');
    assert.match(unit, /^ExecStart=\/usr\/lib\/sockmon\/node\/bin\/node \/usr\/lib\/sockmon\/app\/dist\/src\/cli\.js serve$/m);
    assert.match(unit, /^EnvironmentFile=-\/etc\/sysconfig\/sockmon$/m);
    assert.doesNotMatch(unit, /\/etc\/default\/sockmon|\/usr\/bin\/node|\/usr\/local/);
    const sandbox = (text: string) =>
      text.split('\n').filter((line) => /^(DynamicUser|Protect|Private|SystemCall|Restrict|Capability|NoNewPrivileges|LoadCredential)/.test(line));
    assert.deepEqual(sandbox(unit), sandbox(UNIT));
    assert.ok(sandbox(UNIT).includes('DynamicUser=yes'));
  });

  it('refuses a unit without the lines it rewrites', () => {
    assert.throws(() => packagedUnit(UNIT.replace(/^ExecStart=.*$/m, ''), 'n', 'c', '/etc/default/sockmon'), /no "ExecStart=NODE CLI serve"/);
  });

  it('runs the CLI on the bundled Node.js from /usr/bin/sockmon, passing every argument', () => {
    assert.equal(commandWrapper('/n/node', '/a/cli.js').split('\n').at(-2), 'exec /n/node /a/cli.js "$@"');
  });

  it('orders pre-releases before their release in dpkg and rpm (a tilde), and refuses what is not semver', () => {
    assert.equal(packageVersion('0.1.0'), '0.1.0');
    assert.equal(packageVersion('1.2.0-rc.1'), '1.2.0~rc.1');
    assert.equal(packageVersion('1.2.0-rc-1+build.5'), '1.2.0~rc.1');
    for (const bad of ['1.2', 'v1.2.0', '1.2.0 ', '1.2.0;rm']) assert.throws(() => packageVersion(bad), /not a semver version/);
  });

  it('maps GLIBCXX versions to the libstdc++ release that has them, and refuses an unknown one', () => {
    assert.equal(libstdcxxRelease('3.4.21'), '5');
    assert.equal(libstdcxxRelease('3.4.29'), '11');
    assert.throws(() => libstdcxxRelease('3.4.99'), /GLIBCXX_3\.4\.99/);
  });

  it('has a description naming both formats for both architectures', () => {
    const description = loadDescription();
    assert.deepEqual(description.architectures.arm64, { deb: 'arm64', rpm: 'aarch64' });
    assert.equal(description.deb.defaults, '/etc/default/sockmon');
    assert.equal(description.rpm.defaults, '/etc/sysconfig/sockmon');
  });

  const usage: [string[], number, RegExp][] = [
    [['--bogus'], 2, /^package: Unknown option '--bogus'/],
    [['--arch', 'sparc'], 2, /^package: --arch: "sparc" is not one of x64, arm64$/m],
    [['--format', 'apk'], 2, /^package: --format: "apk" is not one of deb, rpm$/m],
    [['stray'], 2, /^package: Unexpected argument 'stray'/],
    [['--tarball', '/nonexistent/sockmon-0.1.0.tgz'], 2, /^package: --tarball: no such file "\/nonexistent\/sockmon-0\.1\.0\.tgz"$/m],
  ];
  for (const [args, status, message] of usage) {
    it(`npm run package -- ${args.join(' ')}: exit ${status}, one line`, () => {
      const result = spawnSync('node', [PACKAGER, ...args], { encoding: 'utf8' });
      assert.equal(result.status, status, result.stderr);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.equal(result.stdout, '');
    });
  }
});
