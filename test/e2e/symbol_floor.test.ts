// The release's symbol floor, read from the packed tarball itself: every prebuilt addon must load wherever Node.js
// 20's official binaries do (glibc 2.28 on x64, 2.17 on arm64), so it may need no GLIBC_ version above that, no
// libstdc++ (GLIBCXX_/CXXABI_) and no library beyond libc, libm, libpthread, libdl and the loader.
// scripts/build-prebuilds.sh makes them so; this checks the result, and that the check fails on an addon built here.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { elfNeeds, floorViolations, highestVersions } from '../../scripts/elf_needs';
import { requireRoot, requireTools } from '../helpers/prerequisites';
import { CHECKOUT, releaseTarball } from '../helpers/release';

const MACHINE: Record<string, RegExp> = { x64: /Machine:\s+Advanced Micro Devices X86-64/, arm64: /Machine:\s+AArch64/ };

describe('e2e: the prebuilt addons in the release tarball need nothing above the glibc floor', function () {
  this.timeout(600_000);
  let dir: string;

  before(function () {
    requireTools(this, [{ command: 'readelf', apt: 'binutils' }]);
    requireRoot(this); // packing builds the addons in a chroot
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-floor-'));
    execFileSync('tar', ['-xzf', releaseTarball(), '-C', dir, 'package/prebuilds']);
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('carries one addon for linux-x64 and one for linux-arm64, tagged glibc', () => {
    const prebuilds = path.join(dir, 'package', 'prebuilds');
    assert.deepEqual(readdirSync(prebuilds).sort(), ['linux-arm64', 'linux-x64']);
    for (const arch of ['x64', 'arm64']) {
      assert.deepEqual(readdirSync(path.join(prebuilds, `linux-${arch}`)), ['sockmon.glibc.node']);
      const header = execFileSync('readelf', ['-h', path.join(prebuilds, `linux-${arch}`, 'sockmon.glibc.node')], { encoding: 'utf8' });
      assert.match(header, MACHINE[arch]);
    }
  });

  for (const arch of ['x64', 'arm64']) {
    it(`linux-${arch}: no GLIBC_ above the floor, no GLIBCXX_/CXXABI_, only libc's libraries`, () => {
      const needs = elfNeeds(path.join(dir, 'package', 'prebuilds', `linux-${arch}`, 'sockmon.glibc.node'));
      console.log(`      linux-${arch}: highest ${JSON.stringify(highestVersions(needs))}, libraries ${needs.libraries.join(' ')}`);
      assert.ok(needs.versions.length > 0, 'readelf found no version needs: the parse is broken');
      assert.deepEqual(floorViolations(needs, arch), []);
    });
  }

  it('fails on the addon built on this machine (Debian 12: glibc 2.36, g++ 12)', function () {
    const hostBuilt = path.join(CHECKOUT, 'build', 'Release', 'sockmon.node');
    if (!existsSync(hostBuilt)) throw new Error(`${hostBuilt} is missing: npm ci builds it`);
    const violations = floorViolations(elfNeeds(hostBuilt), 'x64');
    console.log(`      host-built: ${violations.length} violations, e.g. ${violations.slice(0, 3).join('; ')}`);
    assert.ok(violations.some((v) => /^needs the library libstdc\+\+\.so\.6$/.test(v)));
    assert.ok(violations.some((v) => /^needs GLIBC_2\.3[4-9] \(of libc\.so\.6\), above glibc 2\.28$/.test(v)));
    assert.ok(violations.some((v) => /^needs GLIBCXX_3\.4\.\d+ /.test(v)));
    assert.ok(violations.some((v) => /^needs CXXABI_1\.3\.\d+ /.test(v)));
  });
});
