// What the release tarball carries beyond the code (scripts/pack.ts, run by npm pack's prepack and postpack): a
// manifest with only the operator's scripts (npm warns about a tarball's `prepare` at install), bundled
// dependencies without tests or source maps, and the checkout's own package.json put back afterwards.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { requireRoot } from '../helpers/netns';
import { CHECKOUT, releaseTarball } from '../helpers/release';

describe('e2e: the release tarball carries what runs, and a manifest without build scripts', function () {
  this.timeout(600_000);
  let files: string[];
  let tarball: string;

  before(function () {
    requireRoot(this); // packing builds the addons in a chroot
    tarball = releaseTarball();
    files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .filter(Boolean);
    const unpacked = execFileSync('tar', ['-tzvf', tarball], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .reduce((sum, line) => sum + (Number(line.trim().split(/\s+/)[2]) || 0), 0);
    console.log(
      `      ${path.basename(tarball)}: ${(statSync(tarball).size / 1024).toFixed(0)} KiB, ${files.length} files, ${(unpacked / 1024).toFixed(0)} KiB unpacked`,
    );
  });

  it('publishes only the scripts an operator runs', () => {
    const manifest = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as { scripts: Record<string, string> };
    assert.deepEqual(Object.keys(manifest.scripts).sort(), ['install-service', 'start', 'uninstall-service']);
  });

  it('leaves the bundled dependencies without tests and source maps, and its own code without maps', () => {
    assert.ok(files.includes('package/node_modules/bintrees/package.json'), 'bintrees is bundled');
    assert.deepEqual(
      files.filter((file) => /^package\/node_modules\/(@[^/]+\/)?[^/]+\/(test|tests|perf|examples?)\//.test(file)),
      [],
    );
    assert.deepEqual(
      files.filter((file) => file.endsWith('.map')),
      [],
    );
    assert.ok(files.includes('package/dist/src/cli/cli.js'));
  });

  it("puts the checkout's package.json back after packing", () => {
    const manifest = JSON.parse(readFileSync(path.join(CHECKOUT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.ok(manifest.scripts.prepare && manifest.scripts.prepack && manifest.scripts.test, 'the build scripts are there');
    assert.equal(existsSync(path.join(CHECKOUT, '.package.json.prepack')), false);
  });
});
