// The OS packages of a release tarball, made by `npm run package`'s script (dist/scripts/package.js), and a copy of
// the tarball under a higher version: the package an upgrade installs.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHECKOUT } from './release';

const PACKAGER = path.join(CHECKOUT, 'dist', 'scripts', 'package.js');

/** Runs the packager (arguments as `npm run package --` takes them); its status and output. */
export function runPackager(args: string[]) {
  return spawnSync('node', [PACKAGER, ...args], { encoding: 'utf8', timeout: 600_000 });
}

/** A new directory, removed when the test run exits. */
export function temporaryDirectory(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Builds the packages of `tarball` for `arch` into `out`; the packages' paths (.deb first, then .rpm). `fast`:
 * gzip -1 instead of xz, for packages whose compression is not what a test looks at.
 */
export function buildPackages(tarball: string, arch: string, out: string, fast = false): string[] {
  const result = runPackager(['--tarball', tarball, '--arch', arch, '--out', out, ...(fast ? ['--fast'] : [])]);
  if (result.status !== 0) throw new Error(`the packager failed (${result.status}):\n${result.stdout}${result.stderr}`);
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => line.split(' ')[0]);
}

/** The release tarball with `version` in its package.json, as the next release's tarball would carry it. */
export function reversionedTarball(tarball: string, version: string): string {
  const dir = temporaryDirectory('sockmon-reversioned-');
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  const manifestPath = path.join(dir, 'package', 'package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  manifest.version = version;
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  const output = path.join(dir, `sockmon-${version}.tgz`);
  execFileSync('tar', ['-czf', output, '-C', dir, 'package']);
  return output;
}

/** The version after `version`: its patch number plus one. */
export function nextPatch(version: string): string {
  const [major, minor, patch] = version.split(/[.-]/).map(Number);
  return `${major}.${minor}.${patch + 1}`;
}
